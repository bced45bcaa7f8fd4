"""Figures and Markdown tables: EDA and result plots, the benchmark report."""
