package lora_test

import (
	"context"
	"fmt"

	"github.com/smallsd/smallsd/clip"
	"github.com/smallsd/smallsd/internal/golden"
	"github.com/smallsd/smallsd/lora"
)

func Example() {
	a, err := lora.Load(golden.Path("lora", "lora-kohya.safetensors"))
	if err != nil {
		panic(err)
	}
	text, err := clip.Load(golden.Path("tiny-sd", "text_encoder"))
	if err != nil {
		panic(err)
	}
	defer text.Close()
	u, err := lora.Combine(lora.TextEncoder, lora.Scaled{Adapter: a, Scale: 0.7})
	if err != nil {
		panic(err)
	}
	states, err := text.EncodeLoRA(context.Background(), [][]int{{793, 100, 794}}, u)
	if err != nil {
		panic(err)
	}
	fmt.Println(a.Name, len(a.Layers(lora.UNet)), len(u), states.Shape())
	// Output: lora-kohya 120 12 (1, 3, 32)
}
