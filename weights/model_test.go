package weights

import (
	"strings"
	"testing"
)

func TestOpenModel(t *testing.T) {
	for _, root := range []string{"tiny-sd", "tiny-sd-bin"} {
		m, err := OpenModel(testdata(root))
		if err != nil {
			t.Fatal(err)
		}
		got := strings.Join(m.Components(), " ")
		if got != "scheduler text_encoder tokenizer unet vae" || m.Class != "StableDiffusionPipeline" {
			t.Errorf("%s: components %q, class %q", root, got, m.Class)
		}
		dir, class, err := m.Component("unet")
		if err != nil || class != "UNet2DConditionModel" || !strings.HasSuffix(dir, root+"/unet") {
			t.Errorf("%s: unet → %q %q %v", root, dir, class, err)
		}
		if ci, _ := m.Info("text_encoder"); ci.Library != "transformers" || ci.Class != "CLIPTextModel" {
			t.Errorf("text_encoder info %+v", ci)
		}
		_, _, err = m.Component("safety_checker")
		t.Logf("absent component: %v", err)
		if err == nil || !strings.Contains(err.Error(), "safety_checker") || !strings.Contains(err.Error(), root) {
			t.Errorf("safety_checker: %v", err)
		}
		var unet struct {
			BlockOutChannels []int    `json:"block_out_channels"`
			DownBlockTypes   []string `json:"down_block_types"`
			LayersPerBlock   int      `json:"layers_per_block"`
		}
		if err := m.ReadConfig("unet", &unet); err != nil {
			t.Fatal(err)
		}
		if len(unet.BlockOutChannels) != 4 || unet.LayersPerBlock != 1 || unet.DownBlockTypes[0] != "CrossAttnDownBlock2D" {
			t.Errorf("unet config %+v", unet)
		}
		var sched struct {
			BetaSchedule  string `json:"beta_schedule"`
			SkipPRKSteps  bool   `json:"skip_prk_steps"`
			TrainTimestep int    `json:"num_train_timesteps"`
		}
		if err := m.ReadConfig("scheduler", &sched); err != nil {
			t.Fatal(err)
		}
		if sched.BetaSchedule != "scaled_linear" || !sched.SkipPRKSteps || sched.TrainTimestep != 1000 {
			t.Errorf("scheduler config %+v", sched)
		}
		s, err := m.Open("vae")
		if err != nil {
			t.Fatal(err)
		}
		if !s.Has("decoder.conv_in.weight") {
			t.Error("vae lacks decoder.conv_in.weight")
		}
		s.Close()
	}
}
