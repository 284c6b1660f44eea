"""mien.engine.faces"""
