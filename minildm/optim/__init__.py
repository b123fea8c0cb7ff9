"""minildm.optim"""
