"""minildm.schedulers"""
