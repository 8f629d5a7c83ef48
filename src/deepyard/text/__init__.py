"""Text: tokenizers, corpora, token stores, language-model networks and generation (issue 16).

`tokenizer` (a character vocabulary or a byte-level BPE, stored as JSON with the dataset), `corpus` (reading a
text file, a folder of text files or JSONL into text, with every skipped file and replaced byte reported, and the
contiguous split), `store` (tokens as a memory-mapped array, and the random blocks the trainer draws),
`networks` (char-RNN and a small GPT), `generate` (sampling with temperature and top-k). The task that puts
them on the seam is `deepyard.tasks.languagemodel`.
"""
