package weights_test

import (
	"fmt"
	"log"
	"path/filepath"

	"github.com/smallsd/smallsd/weights"
)

// A model package opens its component, reads its config into its own struct, and walks the
// weights with a View.
func Example() {
	m, err := weights.OpenModel(filepath.Join("..", "testdata", "tiny-sd"))
	if err != nil {
		log.Fatal(err)
	}
	dir, class, err := m.Component("text_encoder")
	if err != nil {
		log.Fatal(err)
	}
	var cfg struct {
		HiddenSize           int `json:"hidden_size"`
		MaxPositionEmbedding int `json:"max_position_embeddings"`
	}
	if err := weights.ReadComponentConfig(dir, &cfg); err != nil {
		log.Fatal(err)
	}
	store, err := weights.Open(dir) // or weights.Open(dir, weights.WithVariant("fp16"))
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	emb := store.View().Sub("text_model").Sub("embeddings")
	pos, err := emb.Tensor("position_embedding.weight", cfg.MaxPositionEmbedding, cfg.HiddenSize)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(class, pos.Shape())
	_, err = emb.Tensor("position_embedding.weight", cfg.MaxPositionEmbedding, cfg.HiddenSize+1)
	fmt.Println(err != nil)
	// Output:
	// CLIPTextModel (77, 32)
	// true
}

// With WithHalf a Store prefers half weights: model layers then fetch their weight matrices as
// IEEE half bits with TensorHalf (an fp16 file's halves as stored; float32 rounded to nearest
// even), holding 2 bytes per value instead of 4.
func ExampleWithHalf() {
	dir := filepath.Join("..", "testdata", "tiny-sd", "text_encoder")
	store, err := weights.Open(dir, weights.WithVariant("fp16"), weights.WithHalf())
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	w := store.View().Sub("text_model.encoder.layers.0.mlp.fc1")
	bits, err := w.TensorHalf("weight", 37, 32)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(w.PreferHalf(), len(bits), store.LoadedBytes())
	// Output:
	// true 1184 2368
}
