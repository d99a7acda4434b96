package clip_test

import (
	"context"
	"fmt"
	"log"

	"github.com/smallsd/smallsd/clip"
	"github.com/smallsd/smallsd/internal/golden"
)

// Load a diffusers text_encoder folder and encode one prompt's 77 token ids (bos, a few
// tokens, then eos as padding, as the SD pipeline's tokenizer gives them).
func ExampleLoad() {
	m, err := clip.Load(golden.Path("tiny-sd", "text_encoder"))
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	cfg := m.Config()
	ids := make([]int, cfg.MaxPositionEmbeddings)
	copy(ids, []int{cfg.BosTokenID, 320, 525, 11})
	for i := 4; i < len(ids); i++ {
		ids[i] = cfg.EosTokenID
	}
	hidden, err := m.Encode(context.Background(), [][]int{ids})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(hidden.Shape())
	// Output: (1, 77, 32)
}
