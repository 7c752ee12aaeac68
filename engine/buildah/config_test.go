package buildah

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

func TestImageConfigKeepsDockerFieldsAndDropsLeftovers(t *testing.T) {
	in := `{
	  "created": "2023-11-14T22:13:20Z",
	  "author": "me",
	  "architecture": "arm64", "variant": "v8", "os": "linux",
	  "container": "0123456789", "docker_version": "x",
	  "container_config": {"Cmd": ["ignored"]},
	  "config": {
	    "Hostname": "sandbox", "User": "app", "Env": ["PATH=/bin"],
	    "Cmd": ["run"], "Entrypoint": null, "WorkingDir": "/w",
	    "ExposedPorts": {"80/tcp": {}}, "Volumes": {"/data": {}},
	    "Labels": {"a": "b"}, "StopSignal": "SIGQUIT",
	    "Healthcheck": {"Test": ["CMD", "true"], "Interval": 5000000000, "Retries": 3},
	    "OnBuild": ["RUN echo hi"], "Shell": ["/bin/bash", "-c"]
	  },
	  "rootfs": {"type": "layers", "diff_ids": ["sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"]},
	  "history": [{"created": "2023-11-14T22:13:20Z", "created_by": "RUN x"}, {"created_by": "ENV y", "empty_layer": true}]
	}`
	out, err := imageConfig([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"container", "container_config", "docker_version"} {
		if _, ok := got[k]; ok {
			t.Errorf("%s is kept", k)
		}
	}
	cfg := got["config"].(map[string]any)
	if _, ok := cfg["Hostname"]; ok {
		t.Error("Hostname is kept")
	}
	for k, want := range map[string]any{
		"User": "app", "WorkingDir": "/w", "StopSignal": "SIGQUIT",
		"Shell":        []any{"/bin/bash", "-c"},
		"OnBuild":      []any{"RUN echo hi"},
		"Healthcheck":  map[string]any{"Test": []any{"CMD", "true"}, "Interval": float64(5 * time.Second), "Retries": float64(3)},
		"ExposedPorts": map[string]any{"80/tcp": map[string]any{}},
		"Volumes":      map[string]any{"/data": map[string]any{}},
	} {
		if !reflect.DeepEqual(cfg[k], want) {
			t.Errorf("config.%s = %#v, want %#v", k, cfg[k], want)
		}
	}
	if _, ok := cfg["Entrypoint"]; ok {
		t.Error("a null Entrypoint is written; BuildKit omits it")
	}
	if got["variant"] != "v8" || got["architecture"] != "arm64" || got["created"] != "2023-11-14T22:13:20Z" {
		t.Errorf("platform or created lost: %v", got)
	}
	h := got["history"].([]any)
	if len(h) != 2 || h[1].(map[string]any)["empty_layer"] != true {
		t.Errorf("history = %v", h)
	}
	if _, ok := h[1].(map[string]any)["created"]; ok {
		t.Error("a zero history time is written")
	}

	again, _ := imageConfig([]byte(in))
	if string(again) != string(out) {
		t.Error("conversion is not deterministic")
	}
}

func TestImageConfigScratch(t *testing.T) {
	out, err := imageConfig([]byte(`{"created":"1970-01-01T00:00:00Z","architecture":"amd64","os":"linux","rootfs":{"type":"layers"}}`))
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		RootFS struct {
			DiffIDs []string `json:"diff_ids"`
		} `json:"rootfs"`
	}
	json.Unmarshal(out, &got)
	if got.RootFS.DiffIDs == nil {
		t.Errorf("an image without layers must list no diff_ids, not null: %s", out)
	}
}
