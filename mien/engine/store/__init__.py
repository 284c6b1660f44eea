"""mien.engine.store"""
