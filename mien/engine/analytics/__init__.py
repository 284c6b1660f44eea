"""mien.engine.analytics"""
