"""Executors take `Trial`s and give back events and `TrialResult`s; they never touch MLflow."""
