"""mien.clients"""
