"""OpenAI-compatible endpoints: the client the LLM judge, the LLM translator and the teacher
share (counted retries, a disk cache of answers, token usage)."""
