package telemetry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Endpoints is what the HTTP server serves.
type Endpoints struct {
	// Gatherer is served on /metrics.
	Gatherer prometheus.Gatherer
	// Ready answers /readyz: whether the detector is doing its job, and
	// if not, what is missing.
	Ready func() (bool, string)
	// Pprof serves /debug/pprof/: profiles show what the process is
	// doing, including code paths, so they are off unless asked for.
	Pprof bool
	// Reload, when set, is called by POST /-/reload: anyone who can reach
	// the port can then make the detector reread its config, so it is
	// off unless asked for (like Prometheus's --web.enable-lifecycle).
	Reload func(context.Context) error
	Logger *slog.Logger
}

// Serve listens on addr and serves /metrics, /healthz (the process is
// alive), /readyz and optionally /debug/pprof/ until the server is closed.
func Serve(addr string, e Endpoints) (*http.Server, net.Addr, error) {
	log := e.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(e.Gatherer, promhttp.HandlerOpts{
		ErrorLog: slogAdapter{log}, ErrorHandling: promhttp.ContinueOnError, EnableOpenMetrics: true,
	}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		ok, why := true, "ok"
		if e.Ready != nil {
			ok, why = e.Ready()
		}
		if !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		io.WriteString(w, why+"\n")
	})
	if e.Reload != nil {
		mux.HandleFunc("/-/reload", func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodPost && r.Method != http.MethodPut {
				w.Header().Set("Allow", "POST, PUT")
				http.Error(w, "use POST", http.StatusMethodNotAllowed)
				return
			}
			if err := e.Reload(r.Context()); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			io.WriteString(w, "reloaded\n")
		})
	}
	if e.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server", "err", err)
		}
	}()
	return srv, ln.Addr(), nil
}

// slogAdapter lets promhttp log through slog.
type slogAdapter struct{ log *slog.Logger }

func (a slogAdapter) Println(v ...any) { a.log.Warn("metrics", "err", fmt.Sprint(v...)) }
