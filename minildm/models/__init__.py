"""minildm.models"""
