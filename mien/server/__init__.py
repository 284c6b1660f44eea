"""mien.server"""
