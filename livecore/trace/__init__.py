"""Traceability (一键溯源): batches, their signed hash chain, sensor series (pure rules)."""
