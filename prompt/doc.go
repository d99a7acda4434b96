// Package prompt reads prompts written in the AUTOMATIC1111 syntax — "(emphasis)",
// "[less]", "(text:1.3)", escapes — and makes text-encoder embeddings of any length from them,
// exactly as diffusers v0.21.4's community lpw_stable_diffusion.py (parse_prompt_attention,
// get_weighted_text_embeddings with its defaults) does:
//
//  1. Parse splits the prompt into segments with weights.
//  2. Tokenize tokenizes each segment on its own and gives every token its segment's weight; at
//     most 3 chunks of 75 tokens are kept.
//  3. Prepare pads the prompt and the negative prompt to the same number of chunks k, each chunk
//     75 tokens wrapped in BOS and EOS.
//  4. Batch.Embed runs each chunk through the text encoder, concatenates the outputs (k·77 rows,
//     BOS and EOS rows kept), multiplies each row by its token's weight and rescales the whole to
//     the unweighted mean.
//
// The UNet takes the k·77 rows as its cross-attention context (any length works). Each chunk
// costs one text-encoder pass, and each extra 77 rows a little more cross-attention per step.
package prompt
