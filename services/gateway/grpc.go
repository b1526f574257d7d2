package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"

	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
	taskstatus "github.com/pdfpipe/pdfpipe/pkg/status"
	pb "github.com/pdfpipe/pdfpipe/proto/cognicore"
)

// serverOptions permit the backend's keepalive pings every 10 s, also
// when no call is open (it pings an idle GetEmbedding connection).
func serverOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 2 * time.Minute, Timeout: 20 * time.Second}),
	}
}

// serveGRPC runs APIKeyService on KeyAddr and the embedding services on
// EmbedAddr until ctx ends, then stops them gracefully.
func (s *Service) serveGRPC(ctx context.Context) error {
	keyLis, err := net.Listen("tcp", s.cfg.KeyAddr)
	if err != nil {
		return fmt.Errorf("listen %s (GRPC_SERVER_PORT): %w", s.cfg.KeyAddr, err)
	}
	embLis, err := net.Listen("tcp", s.cfg.EmbedAddr)
	if err != nil {
		keyLis.Close()
		return fmt.Errorf("listen %s (GRPC_EMBEDDING_PORT): %w", s.cfg.EmbedAddr, err)
	}
	return s.ServeGRPC(ctx, keyLis, embLis)
}

// ServeGRPC serves APIKeyService on keyLis and the embedding services on
// embLis with the configured transport security (Config.GRPC) until ctx
// ends. What is left open — no TLS, no authentication — is logged as a
// warning naming the ports.
func (s *Service) ServeGRPC(ctx context.Context, keyLis, embLis net.Listener) error {
	opts, err := s.cfg.GRPC.ServerOptions()
	if err != nil {
		keyLis.Close()
		embLis.Close()
		return err
	}
	ports := keyLis.Addr().String() + " (ProvideAPIKey) and " + embLis.Addr().String() + " (GetEmbedding)"
	if !s.cfg.GRPC.TLS() {
		s.log.Warn("gRPC " + ports + " serve WITHOUT TLS: keys and texts cross the network in the clear; " +
			"set GRPC_TLS_CERT and GRPC_TLS_KEY (and GRPC_TLS_CLIENT_CA to require client certificates)")
	}
	if !s.cfg.GRPC.Authenticates() {
		s.log.Warn("gRPC " + ports + " accept calls WITHOUT authentication: anyone who reaches them can store keys and spend the embedding quota; " +
			"set GRPC_AUTH_TOKEN (callers send `authorization: Bearer <token>`) or GRPC_TLS_CLIENT_CA. ProvideAPIKey keeps the first key of a task")
	}
	s.log.Info("grpc listening", "apikey", keyLis.Addr().String(), "embedding", embLis.Addr().String(), "security", s.cfg.GRPC)
	return Serve(ctx, s.KeyServer(), s.EmbeddingServer(), keyLis, embLis, opts...)
}

// Serve serves the two gRPC servers on the listeners until ctx ends. opts
// (transport credentials, interceptors) apply to both.
func Serve(ctx context.Context, keys pb.APIKeyServiceServer, emb *EmbeddingServer, keyLis, embLis net.Listener, opts ...grpc.ServerOption) error {
	opts = append(serverOptions(), opts...)
	keySrv := grpc.NewServer(opts...)
	pb.RegisterAPIKeyServiceServer(keySrv, keys)
	embSrv := grpc.NewServer(opts...)
	pb.RegisterEmbeddingServiceServer(embSrv, emb)
	pb.RegisterVectorizerServiceServer(embSrv, emb.Vectorizer())
	hs := health.NewServer()
	healthpb.RegisterHealthServer(keySrv, hs)
	healthpb.RegisterHealthServer(embSrv, hs)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return serve(keySrv, keyLis) })
	g.Go(func() error { return serve(embSrv, embLis) })
	g.Go(func() error {
		<-gctx.Done()
		hs.Shutdown()
		stopGracefully(keySrv, 10*time.Second)
		stopGracefully(embSrv, 10*time.Second)
		return nil
	})
	return g.Wait()
}

// serve is srv.Serve(lis), where a server stopped before it began serving
// (a shutdown right after the start) is a clean end, not an error.
func serve(srv *grpc.Server, lis net.Listener) error {
	if err := srv.Serve(lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return err
	}
	return nil
}

func stopGracefully(srv *grpc.Server, within time.Duration) {
	done := make(chan struct{})
	go func() { srv.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(within):
		srv.Stop()
	}
}

// KeyServer answers ProvideAPIKey.
type KeyServer struct {
	pb.UnimplementedAPIKeyServiceServer
	s *Service
}

// KeyServer returns the APIKeyService implementation.
func (s *Service) KeyServer() *KeyServer { return &KeyServer{s: s} }

// ProvideAPIKey stores a task's key in the keys bucket, where the
// embedders find it by task id; with provider "pdf" the key is the
// password of the task's PDF, which the parser finds there. Neither is
// ever logged. Only an authenticated caller (see Authenticated) may
// replace a task's key; otherwise the first one stays and a different one
// is refused with AlreadyExists.
func (k *KeyServer) ProvideAPIKey(ctx context.Context, req *pb.APIKeyRequest) (*pb.APIKeyResponse, error) {
	id := strings.TrimSpace(req.GetTaskId())
	prov := strings.ToLower(strings.TrimSpace(req.GetProvider()))
	log := k.s.log.With("task_id", id, "provider", prov)
	switch {
	case id == "":
		return nil, status.Error(codes.InvalidArgument, "task_id is required")
	case req.GetApiKey() == "":
		return nil, status.Errorf(codes.InvalidArgument, "task %s: api_key is empty", id)
	case prov != "openai" && prov != "gemini" && prov != pipeline.PDFPasswordProvider:
		return nil, status.Errorf(codes.InvalidArgument, "task %s: provider %q is not supported (want openai, gemini, or %s for the PDF's password)",
			id, req.GetProvider(), pipeline.PDFPasswordProvider)
	}
	st, err := k.s.status.Get(ctx, id)
	// A failed task is retried when the backend pushes it again, and the
	// older backend sends the key before the push: keep that key (it
	// expires with API_KEY_TTL if no push follows). A done task never
	// runs again.
	if err == nil && st.State == taskstatus.Done {
		log.Info("api key for a task that is already done; not stored", "state", st.State)
		return &pb.APIKeyResponse{Success: false, Message: fmt.Sprintf("task %s already %s; key not stored", id, st.State)}, nil
	}
	if err != nil && !errors.Is(err, taskstatus.ErrNotFound) {
		return nil, status.Errorf(codes.Unavailable, "task %s: reading status: %v", id, err)
	}
	// An authenticated caller (the backend, holding the token or a client
	// certificate) may replace a task's key; an anonymous one only gives
	// the first: nobody can swap another task's key.
	replace := Authenticated(ctx)
	what, store := "api key", func() error {
		key := pipeline.APIKey{Provider: prov, Key: req.GetApiKey()}
		if replace {
			return pipeline.PutAPIKey(ctx, k.s.res.Keys, id, key, k.s.cfg.KeyTTL)
		}
		return pipeline.CreateAPIKey(ctx, k.s.res.Keys, id, key, k.s.cfg.KeyTTL)
	}
	if prov == pipeline.PDFPasswordProvider {
		what, store = "PDF password", func() error {
			if replace {
				return pipeline.PutPDFPassword(ctx, k.s.res.Keys, id, req.GetApiKey(), k.s.cfg.KeyTTL)
			}
			return pipeline.CreatePDFPassword(ctx, k.s.res.Keys, id, req.GetApiKey(), k.s.cfg.KeyTTL)
		}
	}
	switch err := store(); {
	case errors.Is(err, pipeline.ErrKeyTaken):
		log.Warn(what+" for a task that already has another; refused (unauthenticated callers cannot replace a key)", "peer", peerAddr(ctx))
		return nil, status.Errorf(codes.AlreadyExists, "task %s already has a different %s; not replaced (only a caller authenticated with GRPC_AUTH_TOKEN or a client certificate may replace it)", id, what)
	case err != nil:
		return nil, status.Errorf(codes.Unavailable, "task %s: storing %s: %v", id, what, err)
	}
	log.Info(what+" stored", "replace_allowed", replace)
	if prov == pipeline.PDFPasswordProvider {
		return &pb.APIKeyResponse{Success: true, Message: "PDF password stored for task " + id}, nil
	}
	return &pb.APIKeyResponse{Success: true, Message: "key stored for task " + id}, nil
}

// EmbeddingServer answers GetEmbedding and the legacy GetVector by asking
// an embedder over NATS (queue group: any embedder answers).
type EmbeddingServer struct {
	pb.UnimplementedEmbeddingServiceServer
	nc   *nats.Conn
	dim  int
	wait time.Duration
	// sealer seals a query's own key before it crosses NATS (nil: plain).
	sealer *pipeline.Sealer
}

// NewEmbeddingServer returns an EmbeddingServer over nc.
func NewEmbeddingServer(nc *nats.Conn, dim int, wait time.Duration) *EmbeddingServer {
	return &EmbeddingServer{nc: nc, dim: dim, wait: wait}
}

// EmbeddingServer returns the EmbeddingService implementation.
func (s *Service) EmbeddingServer() *EmbeddingServer {
	e := NewEmbeddingServer(s.nc, s.cfg.Dimension, s.cfg.EmbedWait)
	e.sealer = pipeline.SealerOf(s.res.Keys)
	return e
}

// GetEmbedding embeds one query text. The backend sends no provider and
// no key: the embedders' default provider answers.
func (e *EmbeddingServer) GetEmbedding(ctx context.Context, req *pb.EmbeddingRequest) (*pb.EmbeddingResponse, error) {
	vec, err := e.embed(ctx, pipeline.EmbedQuery{Text: req.GetText(), Provider: req.GetProvider(), APIKey: req.GetApiKey()})
	if err != nil {
		return nil, err
	}
	return &pb.EmbeddingResponse{Success: true, Message: "ok", Embeddings: vec, Dimension: int32(len(vec))}, nil
}

func (e *EmbeddingServer) embed(ctx context.Context, q pipeline.EmbedQuery) ([]float32, error) {
	if strings.TrimSpace(q.Text) == "" {
		return nil, status.Error(codes.InvalidArgument, "text is empty")
	}
	if _, ok := ctx.Deadline(); !ok {
		// The backend sets no deadline; do not hang forever.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, e.wait)
		defer cancel()
	}
	q.SealQueryKey(e.sealer)
	data, err := json.Marshal(q)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "encode query: %v", err)
	}
	msg, err := e.nc.RequestWithContext(ctx, pipeline.QuerySubject, data)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return nil, status.Error(codes.Unavailable, "no embedder is running")
	case errors.Is(err, context.DeadlineExceeded):
		return nil, status.Error(codes.DeadlineExceeded, "no embedder answered in time")
	case err != nil:
		return nil, status.Errorf(codes.Unavailable, "asking an embedder: %v", err)
	}
	var r pipeline.EmbedReply
	if err := json.Unmarshal(msg.Data, &r); err != nil {
		return nil, status.Errorf(codes.Internal, "embedder reply: %v", err)
	}
	switch {
	case r.InvalidKey:
		return nil, status.Error(codes.Unauthenticated, r.Error)
	case r.BadInput:
		return nil, status.Error(codes.InvalidArgument, r.Error)
	case r.Error != "":
		return nil, status.Error(codes.Unavailable, r.Error)
	}
	if len(r.Vector) != e.dim {
		return nil, status.Errorf(codes.Internal, "embedder returned %d dimensions, want %d", len(r.Vector), e.dim)
	}
	return r.Vector, nil
}

// Vectorizer returns the legacy VectorizerService over the same embedders.
func (e *EmbeddingServer) Vectorizer() pb.VectorizerServiceServer { return vectorizer{e: e} }

type vectorizer struct {
	pb.UnimplementedVectorizerServiceServer
	e *EmbeddingServer
}

// GetVector is the legacy single-text call.
func (v vectorizer) GetVector(ctx context.Context, req *pb.TextRequest) (*pb.VectorResponse, error) {
	vec, err := v.e.embed(ctx, pipeline.EmbedQuery{Text: req.GetText()})
	if err != nil {
		return nil, err
	}
	return &pb.VectorResponse{Vector: vec}, nil
}
