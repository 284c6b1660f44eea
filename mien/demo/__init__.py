"""mien.demo"""
