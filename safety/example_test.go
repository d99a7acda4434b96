package safety_test

import (
	"context"
	"fmt"
	"image"
	"image/color"
	"log"

	"github.com/smallsd/smallsd/internal/golden"
	"github.com/smallsd/smallsd/safety"
)

// Load a safety checker (here the tiny one of the tests) and check an image; a flagged image
// would come back black.
func ExampleLoad() {
	c, err := safety.Load(golden.Path("tiny-sd-safety", "safety_checker"), golden.Path("tiny-sd-safety", "feature_extractor"))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	img := image.NewNRGBA(image.Rect(0, 0, 96, 64))
	for y := 0; y < 64; y++ {
		for x := 0; x < 96; x++ {
			img.SetNRGBA(x, y, color.NRGBA{R: uint8(2 * x), G: uint8(3 * y), B: 128, A: 255})
		}
	}
	res, err := c.Filter(context.Background(), []*image.NRGBA{img})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res[0].NSFW, res[0])
	// Output: false not flagged (special care [0])
}
