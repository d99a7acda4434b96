package prompt_test

import (
	"context"
	"fmt"

	"github.com/smallsd/smallsd/clip"
	"github.com/smallsd/smallsd/prompt"
	"github.com/smallsd/smallsd/tokenizer"
)

func ExampleParse() {
	segs, err := prompt.Parse(`a (red:1.3) cube on ((wood)), [blurry], \(not weighted\)`)
	if err != nil {
		panic(err)
	}
	for _, s := range segs {
		fmt.Printf("%q %.4g\n", s.Text, s.Weight)
	}
	// Output:
	// "a " 1
	// "red" 1.3
	// " cube on " 1
	// "wood" 1.21
	// ", " 1
	// "blurry" 0.9091
	// ", (not weighted)" 1
}

func ExampleEmbed() {
	tok, err := tokenizer.Load("../testdata/tiny-sd/tokenizer")
	if err != nil {
		panic(err)
	}
	enc, err := clip.Load("../testdata/tiny-sd/text_encoder")
	if err != nil {
		panic(err)
	}
	defer enc.Close()
	// The negative prompt first, as the UNet's batch has it; both get the same number of chunks.
	states, err := prompt.Embed(context.Background(), tok, enc,
		[]string{"blurry", "a (photograph:1.2) of an astronaut riding a horse on the moon"}, prompt.Options{})
	if err != nil {
		panic(err)
	}
	fmt.Println(states.Shape()) // 2 prompts × 77·k positions × hidden size
	// Output: (2, 77, 32)
}
