"""mien.engine"""
