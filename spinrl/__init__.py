"""spinrl"""
