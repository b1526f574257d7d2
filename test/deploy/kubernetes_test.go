package deploy

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/kustomize/api/krusty"
	kusttypes "sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/pdfpipe/pdfpipe/pkg/pipeline"

	"github.com/pdfpipe/pdfpipe/testkit/testenv"
)

// scaledObject mirrors KEDA's ScaledObject (keda.sh/v1alpha1) as its
// documentation and CRD define it. It is a local copy because the KEDA Go
// module (github.com/kedacore/keda/v2) brings in the whole operator — every
// scaler's client library — which is far too heavy for a test of YAML
// files. Decoding is strict, so a misspelt or invented field still fails.
type scaledObject struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		ScaleTargetRef struct {
			APIVersion             string `json:"apiVersion,omitempty"`
			Kind                   string `json:"kind,omitempty"`
			Name                   string `json:"name"`
			EnvSourceContainerName string `json:"envSourceContainerName,omitempty"`
		} `json:"scaleTargetRef"`
		PollingInterval       *int32 `json:"pollingInterval,omitempty"`
		InitialCooldownPeriod *int32 `json:"initialCooldownPeriod,omitempty"`
		CooldownPeriod        *int32 `json:"cooldownPeriod,omitempty"`
		IdleReplicaCount      *int32 `json:"idleReplicaCount,omitempty"`
		MinReplicaCount       *int32 `json:"minReplicaCount,omitempty"`
		MaxReplicaCount       *int32 `json:"maxReplicaCount,omitempty"`
		Fallback              *struct {
			FailureThreshold int32  `json:"failureThreshold"`
			Replicas         int32  `json:"replicas"`
			Behavior         string `json:"behavior,omitempty"`
		} `json:"fallback,omitempty"`
		Advanced *struct {
			RestoreToOriginalReplicaCount bool `json:"restoreToOriginalReplicaCount,omitempty"`
			HorizontalPodAutoscalerConfig *struct {
				Name     string                                         `json:"name,omitempty"`
				Behavior *autoscalingv2.HorizontalPodAutoscalerBehavior `json:"behavior,omitempty"`
			} `json:"horizontalPodAutoscalerConfig,omitempty"`
			ScalingModifiers *struct {
				Formula          string `json:"formula,omitempty"`
				Target           string `json:"target,omitempty"`
				ActivationTarget string `json:"activationTarget,omitempty"`
				MetricType       string `json:"metricType,omitempty"`
			} `json:"scalingModifiers,omitempty"`
		} `json:"advanced,omitempty"`
		Triggers []struct {
			Type              string            `json:"type"`
			Name              string            `json:"name,omitempty"`
			UseCachedMetrics  bool              `json:"useCachedMetrics,omitempty"`
			MetricType        string            `json:"metricType,omitempty"`
			Metadata          map[string]string `json:"metadata"`
			AuthenticationRef *struct {
				Name string `json:"name"`
				Kind string `json:"kind,omitempty"`
			} `json:"authenticationRef,omitempty"`
		} `json:"triggers"`
	} `json:"spec"`
}

// natsJetStreamParams are the documented metadata of KEDA's nats-jetstream
// trigger.
var natsJetStreamParams = []string{"natsServerMonitoringEndpoint", "account", "stream", "consumer", "lagThreshold", "activationLagThreshold", "useHttps"}

// objects are the decoded documents of a set of manifests.
type objects struct {
	Deployments   map[string]*appsv1.Deployment
	Services      map[string]*corev1.Service
	ConfigMaps    map[string]*corev1.ConfigMap
	Secrets       map[string]*corev1.Secret
	Namespaces    map[string]*corev1.Namespace
	HPAs          map[string]*autoscalingv2.HorizontalPodAutoscaler
	PDBs          map[string]*policyv1.PodDisruptionBudget
	ScaledObjects map[string]*scaledObject
}

func newObjects() *objects {
	return &objects{
		Deployments: map[string]*appsv1.Deployment{}, Services: map[string]*corev1.Service{},
		ConfigMaps: map[string]*corev1.ConfigMap{}, Secrets: map[string]*corev1.Secret{},
		Namespaces: map[string]*corev1.Namespace{}, HPAs: map[string]*autoscalingv2.HorizontalPodAutoscaler{},
		PDBs: map[string]*policyv1.PodDisruptionBudget{}, ScaledObjects: map[string]*scaledObject{},
	}
}

// splitDocs splits a multi-document YAML stream.
func splitDocs(b []byte) [][]byte {
	var docs [][]byte
	for _, d := range bytes.Split(append([]byte("\n"), b...), []byte("\n---")) {
		if len(bytes.TrimSpace(stripComments(d))) > 0 {
			docs = append(docs, d)
		}
	}
	return docs
}

func stripComments(b []byte) []byte {
	var out []byte
	for _, line := range bytes.Split(b, []byte("\n")) {
		if !bytes.HasPrefix(bytes.TrimSpace(line), []byte("#")) {
			out = append(out, line...)
			out = append(out, '\n')
		}
	}
	return out
}

// strict decodes one YAML document into v as the API server does:
// field names match case-sensitively, and unknown or duplicate fields fail.
func strict(doc []byte, v any) error {
	j, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return err
	}
	strictErrs, err := kjson.UnmarshalStrict(j, v)
	if err != nil {
		return err
	}
	return errors.Join(strictErrs...)
}

// decodeInto decodes every document of b strictly into the Kubernetes (or
// KEDA) type its apiVersion and kind name, adding it to o. A document marked
// `$patch: delete` (a kustomize patch) is decoded without that marker.
func decodeInto(t *testing.T, o *objects, name string, b []byte) {
	t.Helper()
	for i, doc := range splitDocs(b) {
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			t.Errorf("%s #%d: %v", name, i, err)
			continue
		}
		doc = bytes.ReplaceAll(doc, []byte("$patch: delete\n"), nil)
		where := fmt.Sprintf("%s #%d (%s %s)", name, i, tm.APIVersion, tm.Kind)
		var err error
		var meta *metav1.ObjectMeta
		switch tm.APIVersion + " " + tm.Kind {
		case "apps/v1 Deployment":
			var v appsv1.Deployment
			err, meta = strict(doc, &v), &v.ObjectMeta
			o.Deployments[v.Name] = &v
		case "v1 Service":
			var v corev1.Service
			err, meta = strict(doc, &v), &v.ObjectMeta
			o.Services[v.Name] = &v
		case "v1 ConfigMap":
			var v corev1.ConfigMap
			err, meta = strict(doc, &v), &v.ObjectMeta
			o.ConfigMaps[v.Name] = &v
		case "v1 Secret":
			var v corev1.Secret
			err, meta = strict(doc, &v), &v.ObjectMeta
			o.Secrets[v.Name] = &v
		case "v1 Namespace":
			var v corev1.Namespace
			err, meta = strict(doc, &v), &v.ObjectMeta
			o.Namespaces[v.Name] = &v
		case "autoscaling/v2 HorizontalPodAutoscaler":
			var v autoscalingv2.HorizontalPodAutoscaler
			err, meta = strict(doc, &v), &v.ObjectMeta
			o.HPAs[v.Name] = &v
		case "policy/v1 PodDisruptionBudget":
			var v policyv1.PodDisruptionBudget
			err, meta = strict(doc, &v), &v.ObjectMeta
			o.PDBs[v.Name] = &v
		case "keda.sh/v1alpha1 ScaledObject":
			var v scaledObject
			err, meta = strict(doc, &v), &v.ObjectMeta
			o.ScaledObjects[v.Name] = &v
		default:
			t.Errorf("%s: no API type known to this test", where)
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", where, err)
		} else if meta.Name == "" {
			t.Errorf("%s: no metadata.name", where)
		}
	}
}

// TestKubernetesFilesDecodeStrictly decodes every file under
// deploy/kubernetes as it is written: kustomizations into kustomize's type,
// everything else into the API types.
func TestKubernetesFilesDecodeStrictly(t *testing.T) {
	root := filepath.Join(testenv.RepoRoot(t), "deploy", "kubernetes")
	var files int
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".yaml") {
			return err
		}
		files++
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if filepath.Base(path) == "kustomization.yaml" {
			var k kusttypes.Kustomization
			if err := strict(b, &k); err != nil {
				t.Errorf("%s: %v", rel, err)
			}
			for _, r := range k.Resources {
				if _, err := os.Stat(filepath.Join(filepath.Dir(path), r)); err != nil {
					t.Errorf("%s: resource %s: %v", rel, r, err)
				}
			}
			return nil
		}
		decodeInto(t, newObjects(), rel, b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 12 {
		t.Errorf("decoded %d files under deploy/kubernetes, want every manifest", files)
	}
}

// build runs kustomize on a directory under deploy/kubernetes, as
// `kubectl apply -k` does, and decodes the output strictly.
func build(t *testing.T, dir string) *objects {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	rm, err := k.Run(filesys.MakeFsOnDisk(), filepath.Join(testenv.RepoRoot(t), "deploy", "kubernetes", dir))
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	out, err := rm.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	o := newObjects()
	decodeInto(t, o, "kustomize build "+dir, out)
	return o
}

// checkBase checks what the base and its overlays share: Deployments wired
// to the ConfigMap and its settings read by the services.
func checkBase(t *testing.T, o *objects) {
	t.Helper()
	cm := o.ConfigMaps["pdfpipe-config"]
	if cm == nil {
		t.Fatalf("no ConfigMap pdfpipe-config (have %v)", keys(o.ConfigMaps))
	}
	documented := readmeEnv(t)
	stages := stageNames(t)
	readByAny := map[string]bool{}
	for _, s := range stages {
		for k := range envReadBy(t, commandDir(t, s)) {
			readByAny[k] = true
		}
	}
	for k := range cm.Data {
		if _, ok := documented[k]; !ok {
			t.Errorf("ConfigMap sets %s, which the README's configuration table does not list", k)
		}
		if !readByAny[k] {
			t.Errorf("ConfigMap sets %s, which no stage reads", k)
		}
	}
	health := portOf(t, cm.Data["HEALTH_ADDR"])
	for _, s := range stages {
		d := o.Deployments["pdfpipe-"+s]
		if d == nil {
			t.Errorf("no Deployment pdfpipe-%s", s)
			continue
		}
		if d.Namespace != "pdfpipe" {
			t.Errorf("%s: namespace %q", d.Name, d.Namespace)
		}
		c := d.Spec.Template.Spec.Containers
		if len(c) != 1 {
			t.Errorf("%s: %d containers", d.Name, len(c))
			continue
		}
		if !strings.HasPrefix(c[0].Image, "pdfpipe/"+s+":") {
			t.Errorf("%s: image %s", d.Name, c[0].Image)
		}
		if !slices.ContainsFunc(c[0].EnvFrom, func(e corev1.EnvFromSource) bool {
			return e.ConfigMapRef != nil && e.ConfigMapRef.Name == cm.Name
		}) {
			t.Errorf("%s: does not read ConfigMap %s", d.Name, cm.Name)
		}
		for _, e := range c[0].EnvFrom {
			if e.SecretRef != nil && (e.SecretRef.Optional == nil || !*e.SecretRef.Optional) {
				t.Errorf("%s: Secret %s is required; every Secret is optional (secret.example.yaml)", d.Name, e.SecretRef.Name)
			}
		}
		var healthPort int32
		for _, p := range c[0].Ports {
			if p.Name == "health" {
				healthPort = p.ContainerPort
			}
		}
		if uint32(healthPort) != health {
			t.Errorf("%s: health port %d, HEALTH_ADDR is %s", d.Name, healthPort, cm.Data["HEALTH_ADDR"])
		}
		for _, probe := range []*corev1.Probe{c[0].StartupProbe, c[0].LivenessProbe, c[0].ReadinessProbe} {
			if probe == nil || probe.HTTPGet == nil || probe.HTTPGet.Port.String() != "health" {
				t.Errorf("%s: probe %+v, want httpGet on the health port", d.Name, probe)
			}
		}
		if c[0].ReadinessProbe != nil && c[0].ReadinessProbe.HTTPGet != nil && c[0].ReadinessProbe.HTTPGet.Path != "/readyz" {
			t.Errorf("%s: readiness on %s, want /readyz", d.Name, c[0].ReadinessProbe.HTTPGet.Path)
		}
		sel := d.Spec.Selector.MatchLabels
		for k, v := range sel {
			if d.Spec.Template.Labels[k] != v {
				t.Errorf("%s: selector %v does not match the pod labels %v", d.Name, sel, d.Spec.Template.Labels)
			}
		}
	}
	for _, pdb := range o.PDBs {
		if !matchesDeployment(o, pdb.Spec.Selector.MatchLabels) {
			t.Errorf("PodDisruptionBudget %s selects no Deployment's pods", pdb.Name)
		}
	}
}

func matchesDeployment(o *objects, sel map[string]string) bool {
	for _, d := range o.Deployments {
		ok := true
		for k, v := range sel {
			ok = ok && d.Spec.Template.Labels[k] == v
		}
		if ok {
			return true
		}
	}
	return false
}

func keys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// TestKubernetesBase: the base builds, and each CPU autoscaler targets a
// Deployment that leaves its replica count to it.
func TestKubernetesBase(t *testing.T) {
	o := build(t, ".")
	checkBase(t, o)
	if len(o.HPAs) == 0 {
		t.Error("the base has no HorizontalPodAutoscaler")
	}
	for name, h := range o.HPAs {
		d := o.Deployments[h.Spec.ScaleTargetRef.Name]
		if d == nil || h.Spec.ScaleTargetRef.Kind != "Deployment" {
			t.Errorf("HPA %s targets %+v, which is no Deployment here", name, h.Spec.ScaleTargetRef)
			continue
		}
		if d.Spec.Replicas != nil {
			t.Errorf("Deployment %s sets replicas %d, which every apply resets under HPA %s", d.Name, *d.Spec.Replicas, name)
		}
	}
	if len(o.ScaledObjects) != 0 {
		t.Errorf("the base has ScaledObjects %v: they need KEDA, which is the overlay's", keys(o.ScaledObjects))
	}
}

// TestKubernetesKEDAOverlay: overlays/keda scales each JetStream stage on
// its own consumer's backlog and nothing else scales those Deployments.
func TestKubernetesKEDAOverlay(t *testing.T) {
	o := build(t, "overlays/keda")
	checkBase(t, o)
	if len(o.HPAs) != 0 {
		t.Errorf("HPAs %v left beside the ScaledObjects: two autoscalers fight over one Deployment", keys(o.HPAs))
	}
	natsURL, err := url.Parse(o.ConfigMaps["pdfpipe-config"].Data["NATS_URL"])
	if err != nil {
		t.Fatal(err)
	}
	release, ns, _ := strings.Cut(strings.TrimSuffix(natsURL.Hostname(), ".svc.cluster.local"), ".")
	values := natsValues(t)

	stages := []pipeline.Stage{pipeline.Fetch, pipeline.Parse, pipeline.Embed, pipeline.Ingest}
	var consumers []string
	for _, st := range stages {
		consumers = append(consumers, st.Durable())
	}
	seen := map[string]bool{}
	for name, so := range o.ScaledObjects {
		if so.Namespace != "pdfpipe" {
			t.Errorf("%s: namespace %q", name, so.Namespace)
		}
		ref := so.Spec.ScaleTargetRef
		d := o.Deployments[ref.Name]
		if d == nil || (ref.Kind != "" && ref.Kind != "Deployment") {
			t.Errorf("%s targets %+v, which is no Deployment here", name, ref)
			continue
		}
		if d.Spec.Replicas != nil {
			t.Errorf("Deployment %s sets replicas %d, which every apply resets under KEDA", d.Name, *d.Spec.Replicas)
		}
		if so.Spec.MinReplicaCount == nil || *so.Spec.MinReplicaCount < 1 || so.Spec.MaxReplicaCount == nil || *so.Spec.MaxReplicaCount < *so.Spec.MinReplicaCount {
			t.Errorf("%s: replicas %v..%v", name, so.Spec.MinReplicaCount, so.Spec.MaxReplicaCount)
		}
		if len(so.Spec.Triggers) != 1 {
			t.Errorf("%s: %d triggers, want one", name, len(so.Spec.Triggers))
			continue
		}
		tr := so.Spec.Triggers[0]
		if tr.Type != "nats-jetstream" {
			t.Errorf("%s: trigger %s, want nats-jetstream", name, tr.Type)
		}
		for k, v := range tr.Metadata {
			if !slices.Contains(natsJetStreamParams, k) {
				t.Errorf("%s: trigger metadata %s is not a nats-jetstream parameter", name, k)
			}
			switch k {
			case "lagThreshold", "activationLagThreshold":
				if n, err := strconv.ParseInt(v, 10, 64); err != nil || n < 0 {
					t.Errorf("%s: %s %q", name, k, v)
				}
			case "useHttps":
				if _, err := strconv.ParseBool(v); err != nil {
					t.Errorf("%s: useHttps %q", name, v)
				}
			}
		}
		md := tr.Metadata
		if md["stream"] != pipeline.Stream {
			t.Errorf("%s: stream %q, want %s", name, md["stream"], pipeline.Stream)
		}
		if md["account"] != "$G" {
			t.Errorf("%s: account %q, want $G (no accounts configured)", name, md["account"])
		}
		if md["lagThreshold"] == "" {
			t.Errorf("%s: no lagThreshold", name)
		}
		consumer := md["consumer"]
		seen[consumer] = true
		if !slices.Contains(consumers, consumer) {
			t.Errorf("%s: consumer %q is none of the stages' %v", name, consumer, consumers)
		}
		if d.Spec.Template.Labels["app.kubernetes.io/component"] != consumer {
			t.Errorf("%s scales %s on consumer %s, which that Deployment does not read", name, d.Name, consumer)
		}
		host, port, err := net.SplitHostPort(md["natsServerMonitoringEndpoint"])
		if err != nil {
			t.Errorf("%s: natsServerMonitoringEndpoint: %v", name, err)
			continue
		}
		// In a cluster the scaler reaches each server as <pod>.<endpoint>:
		// the endpoint must be the chart's headless service.
		if want := release + "-headless." + ns + ".svc.cluster.local"; host != want {
			t.Errorf("%s: monitoring endpoint %s, want %s (the headless service of the NATS release in NATS_URL)", name, host, want)
		}
		if port != strconv.Itoa(values.Config.Monitor.Port) {
			t.Errorf("%s: monitoring port %s, the NATS values serve %d", name, port, values.Config.Monitor.Port)
		}
	}
	for _, c := range consumers {
		if !seen[c] {
			t.Errorf("no ScaledObject scales on consumer %s", c)
		}
	}
}

// natsChartValues mirrors the parts of the official NATS chart's values
// (nats-io/k8s, charts 1.x and 2.x) that deploy/nats/values.yaml sets;
// decoding is strict, so a key the chart does not have fails here instead
// of being ignored by helm.
type natsChartValues struct {
	Config struct {
		Cluster struct {
			Enabled  bool `json:"enabled"`
			Replicas int  `json:"replicas"`
		} `json:"cluster"`
		JetStream struct {
			Enabled   bool `json:"enabled"`
			FileStore struct {
				Enabled bool   `json:"enabled"`
				Dir     string `json:"dir"`
				PVC     struct {
					Enabled          bool    `json:"enabled"`
					Size             string  `json:"size"`
					StorageClassName *string `json:"storageClassName"`
				} `json:"pvc"`
			} `json:"fileStore"`
			MemoryStore struct {
				Enabled bool   `json:"enabled"`
				MaxSize string `json:"maxSize"`
			} `json:"memoryStore"`
		} `json:"jetstream"`
		Monitor struct {
			Enabled bool `json:"enabled"`
			Port    int  `json:"port"`
		} `json:"monitor"`
	} `json:"config"`
	Container struct {
		Merge struct {
			Resources corev1.ResourceRequirements `json:"resources"`
		} `json:"merge"`
		Env map[string]string `json:"env"`
	} `json:"container"`
	PodTemplate struct {
		TopologySpreadConstraints map[string]struct {
			MaxSkew           int32                                `json:"maxSkew"`
			WhenUnsatisfiable corev1.UnsatisfiableConstraintAction `json:"whenUnsatisfiable"`
		} `json:"topologySpreadConstraints"`
	} `json:"podTemplate"`
	PodDisruptionBudget struct {
		Enabled bool `json:"enabled"`
	} `json:"podDisruptionBudget"`
	PromExporter struct {
		Enabled bool `json:"enabled"`
	} `json:"promExporter"`
	NatsBox struct {
		Enabled bool `json:"enabled"`
	} `json:"natsBox"`
}

func natsValues(t *testing.T) natsChartValues {
	t.Helper()
	var v natsChartValues
	if err := strict(readFile(t, "deploy/nats/values.yaml"), &v); err != nil {
		t.Fatalf("deploy/nats/values.yaml: %v", err)
	}
	return v
}

// TestNATSValues: the chart values make a 3-server JetStream cluster that
// holds every stream with the replicas the manifests ask for.
func TestNATSValues(t *testing.T) {
	v := natsValues(t)
	c := v.Config
	if !c.Cluster.Enabled || c.Cluster.Replicas != 3 {
		t.Errorf("cluster %+v, want enabled with 3 servers", c.Cluster)
	}
	js := c.JetStream
	if !js.Enabled || !js.FileStore.Enabled || !js.FileStore.PVC.Enabled || js.FileStore.PVC.Size == "" {
		t.Errorf("jetstream %+v, want file storage on a persistent volume", js)
	}
	if !c.Monitor.Enabled || c.Monitor.Port == 0 {
		t.Errorf("monitor %+v: KEDA reads the consumers' backlog there", c.Monitor)
	}
	o := build(t, ".")
	replicas, err := strconv.Atoi(o.ConfigMaps["pdfpipe-config"].Data["NATS_REPLICAS"])
	if err != nil || replicas < 1 || replicas > c.Cluster.Replicas {
		t.Errorf("NATS_REPLICAS %q in the ConfigMap: want 1..%d servers", o.ConfigMaps["pdfpipe-config"].Data["NATS_REPLICAS"], c.Cluster.Replicas)
	}
	if replicas%2 == 0 {
		t.Errorf("NATS_REPLICAS %d: an even number of replicas tolerates no more failures than one fewer", replicas)
	}
	if tsc, ok := v.PodTemplate.TopologySpreadConstraints["kubernetes.io/hostname"]; !ok || tsc.WhenUnsatisfiable != corev1.DoNotSchedule {
		t.Errorf("topology spread %+v: want the servers on different nodes", v.PodTemplate.TopologySpreadConstraints)
	}
	if !v.PodDisruptionBudget.Enabled {
		t.Error("no PodDisruptionBudget for the servers")
	}
}
