package scheduler_test

import (
	"fmt"
	"log"
	"math"

	"github.com/smallsd/smallsd/scheduler"
	"github.com/smallsd/smallsd/torchrand"
)

// Swapping schedulers on one model: the same scheduler_config.json configures any of them, as
// diffusers' from_config does. The model here is a stand-in for the UNet.
func ExampleNew() {
	cfg, err := scheduler.LoadConfig("../testdata/tiny-sd/scheduler/scheduler_config.json")
	if err != nil {
		log.Fatal(err)
	}
	s, err := scheduler.New("pndm", cfg)
	if err != nil {
		log.Fatal(err)
	}
	if err := s.SetTimesteps(20); err != nil {
		log.Fatal(err)
	}
	rng := torchrand.New(42)
	latents := rng.Randn(1, 4, 8, 8)
	for i := range latents {
		latents[i] *= s.InitNoiseSigma()
	}
	for i, t := range s.Timesteps() {
		x, err := s.ScaleModelInput(latents, i)
		if err != nil {
			log.Fatal(err)
		}
		eps := make([]float32, len(x)) // unet(x, t, text embeddings) in a real pipeline
		for k, v := range x {
			eps[k] = float32(math.Tanh(float64(v) * (1 - t/1000)))
		}
		if latents, err = s.Step(eps, i, latents, rng); err != nil {
			log.Fatal(err)
		}
	}
	ts := s.Timesteps()
	fmt.Println(len(ts), "model calls, first timesteps", ts[:3])
	// Output: 21 model calls, first timesteps [951 901 901]
}
