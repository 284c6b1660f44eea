"""mien.training"""
