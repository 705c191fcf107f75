"""Tokenizers the kit ships into every artifact folder."""
