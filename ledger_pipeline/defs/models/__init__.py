"""Dagster definitions of the SQL models in dbt_like_sql/."""
