"""The bus and its contract: topics, messages, the canonical codec, identity and time.

Everything the edge agents and the coordinator agree on lives here. The modules
``units``, ``clock``, ``codec``, ``messages``, ``topics`` and ``identity`` are pure:
they take data and return data and import no network or storage library.
"""
