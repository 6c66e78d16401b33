"""Generating responses from a model directory: batched, left-padded, with its chat template."""
