package main

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// k8sDoc is the part of a Kubernetes object the checks read.
type k8sDoc struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name   string            `yaml:"name"`
		Labels map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	Spec yaml.Node `yaml:"spec"`
}

type k8sSelector struct {
	MatchLabels map[string]string `yaml:"matchLabels"`
}

type k8sProbe struct {
	HTTPGet struct {
		Path string `yaml:"path"`
		Port any    `yaml:"port"`
	} `yaml:"httpGet"`
}

type k8sDeployment struct {
	Replicas int         `yaml:"replicas"`
	Selector k8sSelector `yaml:"selector"`
	Template struct {
		Metadata struct {
			Labels map[string]string `yaml:"labels"`
		} `yaml:"metadata"`
		Spec struct {
			Containers []struct {
				Name  string `yaml:"name"`
				Ports []struct {
					Name          string `yaml:"name"`
					ContainerPort int    `yaml:"containerPort"`
				} `yaml:"ports"`
				Env []struct {
					Name      string `yaml:"name"`
					Value     *string
					ValueFrom *struct {
						FieldRef *struct {
							FieldPath string `yaml:"fieldPath"`
						} `yaml:"fieldRef"`
						SecretKeyRef *struct{ Name, Key string } `yaml:"secretKeyRef"`
					} `yaml:"valueFrom"`
				} `yaml:"env"`
				LivenessProbe  *k8sProbe `yaml:"livenessProbe"`
				ReadinessProbe *k8sProbe `yaml:"readinessProbe"`
			} `yaml:"containers"`
		} `yaml:"spec"`
	} `yaml:"template"`
}

// TestKubernetesManifests parses every document under deploy/kubernetes and
// checks what the daemon reads: every variable is one betasync reads, the
// settings pass loadConfig as the daemon would see them, the replica id
// comes from the pod name, the probes hit /healthz and /readyz on the API
// port, and the Service, PodDisruptionBudget and ServiceMonitor select the
// Deployment's pods and port.
func TestKubernetesManifests(t *testing.T) {
	files, err := filepath.Glob("../../deploy/kubernetes/*.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	byKind := map[string][]k8sDoc{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		dec := yaml.NewDecoder(bytes.NewReader(data))
		for {
			var d k8sDoc
			err := dec.Decode(&d)
			if errors.Is(err, io.EOF) {
				break
			}
			require.NoError(t, err, f)
			require.NotEmpty(t, d.APIVersion, "%s: a document without apiVersion", f)
			require.NotEmpty(t, d.Kind, f)
			require.NotEmpty(t, d.Metadata.Name, "%s: %s without a name", f, d.Kind)
			byKind[d.Kind] = append(byKind[d.Kind], d)
		}
	}
	for _, kind := range []string{"Deployment", "PodDisruptionBudget", "Service", "ServiceMonitor"} {
		require.Len(t, byKind[kind], 1, kind)
	}

	var dep k8sDeployment
	require.NoError(t, byKind["Deployment"][0].Spec.Decode(&dep))
	assert.GreaterOrEqual(t, dep.Replicas, 2, "run two or more replicas")
	podLabels := dep.Template.Metadata.Labels
	assert.True(t, matches(dep.Selector.MatchLabels, podLabels), "the Deployment selects its pods")
	require.Len(t, dep.Template.Spec.Containers, 1)
	c := dep.Template.Spec.Containers[0]

	known := map[string]bool{}
	for _, e := range envVars {
		known[e.name] = true
	}
	env := map[string]string{}
	for _, e := range c.Env {
		assert.True(t, known[e.Name], "%s is not a variable betasync reads", e.Name)
		switch {
		case e.Value != nil:
			env[e.Name] = *e.Value
		case e.ValueFrom != nil && e.ValueFrom.FieldRef != nil:
			env[e.Name] = "betasync-7f9c-abcde" // the pod's name
			if e.Name == "BETASYNC_REPLICA_ID" {
				assert.Equal(t, "metadata.name", e.ValueFrom.FieldRef.FieldPath)
			}
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			env[e.Name] = "sk-from-a-secret"
		default:
			t.Errorf("%s has neither value nor valueFrom", e.Name)
		}
	}
	assert.Contains(t, env, "BETASYNC_REPLICA_ID", "the replica id comes from the pod name")
	assert.Contains(t, env, "LITELLM_MASTER_KEY", "every replica needs the same key")
	assert.Equal(t, "nats://nats.nats.svc.cluster.local:4222", env["NATS_URL"], "the NATS Helm chart's client service")
	cfg, err := loadConfig(func(k string) string { return env[k] })
	require.NoError(t, err, "the daemon would refuse these settings")
	assert.Equal(t, 3, cfg.kvReplicas, "3 KV replicas on a 3-node cluster")

	_, port, err := net.SplitHostPort(cfg.httpAddr)
	require.NoError(t, err)
	portNum, err := strconv.Atoi(port)
	require.NoError(t, err)
	var portName string
	for _, p := range c.Ports {
		if p.ContainerPort == portNum {
			portName = p.Name
		}
	}
	require.NotEmpty(t, portName, "the container exposes BETASYNC_HTTP_ADDR's port %d", portNum)
	for name, probe := range map[string]*k8sProbe{"/healthz": c.LivenessProbe, "/readyz": c.ReadinessProbe} {
		require.NotNil(t, probe, name)
		assert.Equal(t, name, probe.HTTPGet.Path)
		assert.True(t, probe.HTTPGet.Port == portName || probe.HTTPGet.Port == portNum, "%s probes port %v", name, probe.HTTPGet.Port)
	}

	var pdb struct{ Selector k8sSelector }
	require.NoError(t, byKind["PodDisruptionBudget"][0].Spec.Decode(&pdb))
	assert.True(t, matches(pdb.Selector.MatchLabels, podLabels), "the PodDisruptionBudget selects the pods")

	svcDoc := byKind["Service"][0]
	var svc struct {
		Selector map[string]string
		Ports    []struct {
			Name       string
			TargetPort any `yaml:"targetPort"`
		}
	}
	require.NoError(t, svcDoc.Spec.Decode(&svc))
	assert.True(t, matches(svc.Selector, podLabels), "the Service selects the pods")
	require.NotEmpty(t, svc.Ports)
	assert.True(t, slices.ContainsFunc(svc.Ports, func(p struct {
		Name       string
		TargetPort any `yaml:"targetPort"`
	}) bool {
		return p.TargetPort == portName || p.TargetPort == portNum
	}), "the Service targets the API port")

	var sm struct {
		Selector  k8sSelector
		Endpoints []struct{ Port, Path string }
	}
	require.NoError(t, byKind["ServiceMonitor"][0].Spec.Decode(&sm))
	assert.True(t, matches(sm.Selector.MatchLabels, svcDoc.Metadata.Labels), "the ServiceMonitor selects the Service")
	require.Len(t, sm.Endpoints, 1)
	assert.Equal(t, "/metrics", sm.Endpoints[0].Path)
	assert.True(t, slices.ContainsFunc(svc.Ports, func(p struct {
		Name       string
		TargetPort any `yaml:"targetPort"`
	}) bool {
		return p.Name == sm.Endpoints[0].Port
	}), "the ServiceMonitor scrapes a Service port")
}

// matches reports whether every selector label is on labels.
func matches(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// TestNATSVersionAndMaxPayloadAgree keeps one NATS server version and one
// max_payload across what a reader may run: the server the daemon embeds
// (go.mod), docker-compose.yml, and the Helm command, written the same in
// the README and in the manifest's comment.
func TestNATSVersionAndMaxPayloadAgree(t *testing.T) {
	read := func(path string) string {
		data, err := os.ReadFile(path)
		require.NoError(t, err)
		return string(data)
	}
	gomod := regexp.MustCompile(`github.com/nats-io/nats-server/v2 v(2\.\d+)\.`).FindStringSubmatch(read("../../go.mod"))
	require.NotNil(t, gomod, "go.mod requires nats-server")
	minor := gomod[1]

	helm := func(text, linePrefix string) string {
		var cmd []string
		in := false
		for line := range strings.Lines(text) {
			line = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), linePrefix))
			if strings.HasPrefix(line, "helm install ") {
				in = true
			}
			if in {
				cmd = append(cmd, strings.Fields(strings.TrimSuffix(line, `\`))...)
				if !strings.HasSuffix(line, `\`) {
					break
				}
			}
		}
		return strings.Join(cmd, " ")
	}
	inReadme := helm(read("../../README.md"), "")
	inManifest := helm(read("../../deploy/kubernetes/betasync.yaml"), "#")
	require.NotEmpty(t, inReadme)
	assert.Equal(t, inReadme, inManifest, "the README's and the manifest's helm install")
	assert.Contains(t, inReadme, "--set container.image.tag="+minor+"-alpine")
	assert.Contains(t, inReadme, "--set-string 'config.merge.max_payload=<< 4MB >>'")

	compose := read("../../docker-compose.yml")
	assert.Contains(t, compose, "image: nats:"+minor+"-alpine")
	assert.Contains(t, compose, "max_payload: 4MB")
	assert.Contains(t, read("../../scripts/nats-server.conf"), "\nmax_payload: 4MB\n")
}
