"""The peers tokensieve is measured against, together: kvpress presses and LLMLingua, each in its own venv behind a
JSON-lines worker (`venv.py`), and transformers' own assisted and prompt-lookup decoding (`hf_decoding.py`), run
on the plain model in this environment."""
