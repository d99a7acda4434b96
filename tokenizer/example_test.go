package tokenizer_test

import (
	"fmt"
	"log"

	"github.com/smallsd/smallsd/tokenizer"
)

// Load a model folder's tokenizer and make the 77 ids the text encoder takes.
func Example() {
	tk, err := tokenizer.Load("../testdata/tiny-sd") // or the tokenizer/ folder itself
	if err != nil {
		log.Fatal(err)
	}
	ids := tk.EncodePadded("A photograph of an astronaut riding a horse", 77)
	fmt.Println(len(ids), ids[:10])
	fmt.Println(tk.Tokens("a photograph of an astronaut"))
	fmt.Println(tk.BOS(), tk.EOS(), tk.Pad(), tk.VocabSize())
	// Output:
	// 77 [793 320 707 527 547 792 687 320 756 794]
	// [a</w> photograph</w> of</w> an</w> astronaut</w>]
	// 793 794 794 795
}
