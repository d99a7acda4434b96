package server

import (
	"slices"
	"strconv"
	"strings"

	"github.com/smallsd/smallsd/pipeline"
	"github.com/smallsd/smallsd/scheduler"
)

// sampler is one of the web UI's samplers that a smallsd scheduler implements.
type sampler struct {
	Name      string   // the web UI's name
	Scheduler string   // smallsd's scheduler name (scheduler.Names)
	Aliases   []string // further names the web UI accepts (k-diffusion's)
}

// samplers lists them in the web UI's order. PNDM is the web UI's "PLMS".
var samplers = []sampler{
	{"DPM++ 2M", "dpmpp_2m", []string{"k_dpmpp_2m"}},
	{"DPM++ 2M Karras", "dpmpp_2m_karras", []string{"k_dpmpp_2m_ka"}},
	{"Euler a", "euler_a", []string{"k_euler_a", "k_euler_ancestral"}},
	{"Euler", "euler", []string{"k_euler"}},
	{"LMS", "lms", []string{"k_lms"}},
	{"DDIM", "ddim", nil},
	{"PLMS", "pndm", []string{"PNDM"}},
}

// schedulerFor returns the scheduler for a web UI sampler name (or alias, or smallsd scheduler
// name, in any case; "" is the model's default) and the web UI's scheduler field ("", "Automatic"
// or, for DPM++ 2M, "Karras"). A bad sampler is a *fieldError with an empty Field for the caller
// to fill in.
func (s *Server) schedulerFor(name, schedField string) (string, error) {
	sched := ""
	if name != "" {
		for _, sm := range samplers {
			if strings.EqualFold(name, sm.Name) || strings.EqualFold(name, sm.Scheduler) ||
				slices.ContainsFunc(sm.Aliases, func(a string) bool { return strings.EqualFold(a, name) }) {
				sched = sm.Scheduler
			}
		}
		if sched == "" {
			return "", &fieldError{Msg: "unknown sampler " + strconv.Quote(name) + " (known: " + strings.Join(samplerNames(), ", ") + ")"}
		}
	}
	switch strings.ToLower(schedField) {
	case "", "automatic":
	case "karras":
		if sched != "dpmpp_2m" && sched != "dpmpp_2m_karras" {
			return "", badField("scheduler", "Karras sigmas are supported with DPM++ 2M only")
		}
		sched = "dpmpp_2m_karras"
	default:
		return "", badField("scheduler", "unknown schedule %s (known: Automatic, Karras with DPM++ 2M)", strconv.Quote(schedField))
	}
	if sched != "" && !slices.Contains(scheduler.Names(), sched) {
		return "", &fieldError{Msg: "sampler " + strconv.Quote(name) + " is not available"}
	}
	return sched, nil
}

// samplerNames are the web UI names of the samplers.
func samplerNames() []string {
	var names []string
	for _, sm := range samplers {
		names = append(names, sm.Name)
	}
	return names
}

// webUISampler returns the web UI's name of a smallsd scheduler ("pndm" → "PLMS").
func webUISampler(sched string) string {
	for _, sm := range samplers {
		if sm.Scheduler == sched {
			return sm.Name
		}
	}
	return pipeline.SamplerName(sched)
}
