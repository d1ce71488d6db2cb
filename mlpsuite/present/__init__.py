"""Presentation by role: the terminal view (`terminal`), the notebook view (`notebook`), the
MLflow run page (`run_page`), the report files (`report`) and the comparison's figures (`plots`).
Everything here reads analysis results; nothing here computes a statistic or talks to the store
except through `mlpsuite.tracking`.
"""
