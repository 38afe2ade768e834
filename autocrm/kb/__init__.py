"""The knowledge base: articles and their revisions, categories, search, the help center's
reading of it, votes and deflection.
"""
