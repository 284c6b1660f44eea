"""mien.indexer"""
