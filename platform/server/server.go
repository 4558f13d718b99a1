// Package server is dicomgate's bundled HealthVault-compatible platform
// server (SPEC §1–4, §8): the XML method API at /platform/wildcat.ashx with
// HealthVault's envelope, authentication and status codes, and the blob
// streaming interface at /streaming/wildcatblob.ashx.
//
// Methods are registered by name and version (Register), so later parts of
// the platform (DOPU, Patient Connect) add theirs next to the built-in
// CreateAuthenticatedSessionToken v2, PutThings v2, GetThings v3,
// RemoveThings v1 and BeginPutBlob v1.
package server

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"dicomgate/platform/store"
)

// Paths the server answers (SPEC §1).
const (
	PathXMLAPI = "/platform/wildcat.ashx"
	PathBlob   = "/streaming/wildcatblob.ashx"
)

// Config configures a Server. Zero values take the defaults in the comments.
type Config struct {
	// Store persists everything but blob bytes. Required; the Server does not close it.
	Store store.Store
	// DataDir holds blob files (DataDir/blobs) and the blob token key. Required.
	DataDir string
	// PublicURL is the scheme://host[:port] prefix of the blob URLs the
	// server hands out. Required.
	PublicURL string
	// Logger receives request failures (default slog.Default()).
	Logger *slog.Logger
	// Now is the clock (default time.Now); tests move it.
	Now func() time.Time

	// ChunkSize is the blob chunk and SHA256Block block size (4 MiB).
	ChunkSize int64
	// MaxBlobSize bounds one streamed blob (8 GiB).
	MaxBlobSize int64
	// MaxRequestBytes bounds an XML API request (16 MiB).
	MaxRequestBytes int64
	// MaxInlineBlobBytes bounds a blob returned inline by GetThings (4 MiB).
	MaxInlineBlobBytes int64
	// SessionTTL is the lifetime of an authenticated session (4 h).
	SessionTTL time.Duration
	// ClockSkew is how far msg-time may be in the future, and how far past
	// msg-time+msg-ttl a request is still taken (5 min).
	ClockSkew time.Duration
	// MaxMsgTTL caps the msg-ttl a client may ask for (1 h).
	MaxMsgTTL time.Duration
	// UploadTokenTTL is the lifetime of a blob write URL (8 h).
	UploadTokenTTL time.Duration
	// DownloadTokenTTL is the lifetime of a blob read URL (1 h).
	DownloadTokenTTL time.Duration
	// BlobGrace is how long an unreferenced blob is kept before removal (24 h).
	BlobGrace time.Duration
	// GCInterval is how often unreferenced blobs and expired sessions are
	// removed (10 min; negative disables the background sweep).
	GCInterval time.Duration
	// MaxFullThings and MaxPartialThings cap GetThings groups (240, 500).
	MaxFullThings, MaxPartialThings int
	// MaxGroups caps the groups of one GetThings request (20).
	MaxGroups int
	// MaxThingsPerPut caps the things of one PutThings request (500).
	MaxThingsPerPut int
	// Connect holds the DOPU and Patient Connect rules (see ConnectConfig).
	Connect ConnectConfig
}

func (c *Config) setDefaults() error {
	if c.Store == nil {
		return errors.New("server: Config.Store is nil")
	}
	if c.DataDir == "" {
		return errors.New("server: Config.DataDir is empty")
	}
	if c.PublicURL == "" {
		return errors.New("server: Config.PublicURL is empty")
	}
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	def := func(v *int64, d int64) {
		if *v <= 0 {
			*v = d
		}
	}
	defD := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	defI := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.ChunkSize, 4<<20)
	def(&c.MaxBlobSize, 8<<30)
	def(&c.MaxRequestBytes, 16<<20)
	def(&c.MaxInlineBlobBytes, 4<<20)
	defD(&c.SessionTTL, 4*time.Hour)
	defD(&c.ClockSkew, 5*time.Minute)
	defD(&c.MaxMsgTTL, time.Hour)
	defD(&c.UploadTokenTTL, 8*time.Hour)
	defD(&c.DownloadTokenTTL, time.Hour)
	defD(&c.BlobGrace, 24*time.Hour)
	defD(&c.GCInterval, 10*time.Minute)
	defI(&c.MaxFullThings, 240)
	defI(&c.MaxPartialThings, 500)
	defI(&c.MaxGroups, 20)
	defI(&c.MaxThingsPerPut, 500)
	c.Connect = c.Connect.withDefaults()
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.ChunkSize > 1<<30 {
		return fmt.Errorf("server: chunk size %d above 1 GiB", c.ChunkSize)
	}
	return nil
}

// Server is the platform server. It is an http.Handler.
type Server struct {
	cfg      Config
	st       store.Store
	log      *slog.Logger
	blobDir  string
	tokenKey []byte
	mux      *http.ServeMux

	mu      sync.RWMutex
	methods map[methodKey]Method

	// pieces hold the aligned buffers blob chunks pass through on their
	// way to the disk (see writeChunk) and decrypted package blobs are
	// copied through: large, so a chunk costs few system calls.
	pieces sync.Pool
	// blocks serialises chunks writing the same block of a blob.
	blocks blockLocks
	// durableDirs holds the blob directories (id[:2]) whose own entry is
	// known durable in this process (see createBlobFileLazily).
	durableDirs sync.Map

	stop chan struct{}
	done chan struct{}
	once sync.Once
}

var _ http.Handler = (*Server)(nil)

// New returns a Server and starts its background sweep of unreferenced
// blobs and expired sessions. Close stops it.
func New(cfg Config) (*Server, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	s := &Server{
		cfg:     cfg,
		st:      cfg.Store,
		log:     cfg.Logger,
		blobDir: filepath.Join(cfg.DataDir, "blobs"),
		methods: map[methodKey]Method{},
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	piece := int(min(cfg.ChunkSize, maxPiece))
	s.pieces.New = func() any { b := alignedBuffer(piece); return &b }
	if err := os.MkdirAll(s.blobDir, 0o700); err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	key, err := loadOrCreateKey(filepath.Join(cfg.DataDir, "blob-token.key"))
	if err != nil {
		return nil, err
	}
	s.tokenKey = key
	for _, m := range append(s.builtinMethods(), s.connectMethods()...) {
		if err := s.Register(m); err != nil {
			return nil, err
		}
	}
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("POST "+PathXMLAPI, s.serveXMLAPI)
	s.mux.HandleFunc("POST "+PathBlob, s.serveBlobUpload)
	s.mux.HandleFunc("GET "+PathBlob, s.serveBlobDownload)
	s.mux.HandleFunc("HEAD "+PathBlob, s.serveBlobDownload)
	if cfg.GCInterval > 0 {
		go s.sweepLoop()
	} else {
		close(s.done)
	}
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Handle adds an HTTP handler to the server's mux (for the patient pages
// and redirect interface of later parts).
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// Store returns the server's store.
func (s *Server) Store() store.Store { return s.st }

// Close stops the background sweep. It does not close the store.
func (s *Server) Close() error {
	s.once.Do(func() { close(s.stop) })
	<-s.done
	return nil
}

func (s *Server) sweepLoop() {
	defer close(s.done)
	t := time.NewTicker(s.cfg.GCInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			if err := s.Sweep(context.Background()); err != nil {
				s.log.Warn("platform sweep", "err", err)
			}
		}
	}
}

// Sweep removes blobs unreferenced for longer than BlobGrace (their files
// first, then their rows) and expired sessions. It runs periodically; tests
// call it directly.
func (s *Server) Sweep(ctx context.Context) error {
	now := s.cfg.Now()
	blobs, err := s.st.UnreferencedBlobs(ctx, now.Add(-s.cfg.BlobGrace))
	if err != nil {
		return err
	}
	for _, b := range blobs {
		// The row goes first: DeleteBlob refuses a blob a thing referenced
		// meanwhile, and a thing can no longer reference a deleted row.
		err := s.st.DeleteBlob(ctx, b.ID)
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			return err
		}
		if err := os.Remove(s.blobPath(b.ID)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	if err := s.sweepConnect(ctx); err != nil {
		return err
	}
	return s.st.DeleteExpiredSessions(ctx, now)
}

func loadOrCreateKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		if len(b) != 32 {
			return nil, fmt.Errorf("server: token key %s has %d bytes, want 32", path, len(b))
		}
		return b, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	b = make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		// Another process created it meanwhile; use theirs.
		return loadOrCreateKey(path)
	}
	if err != nil {
		return nil, fmt.Errorf("server: create token key: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, err
	}
	return b, f.Close()
}
