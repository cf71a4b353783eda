package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	utiljson "sigs.k8s.io/json"
)

// DefaultMaxRequestBytes bounds an AdmissionReview body. An object is at most about
// 1.5 MiB (etcd's request limit) and an UPDATE review carries two of them plus the
// envelope; 7 MiB leaves room for that and rejects anything larger before decoding it.
const DefaultMaxRequestBytes = 7 << 20

// reqInfo identifies a request, for the reply and the logs.
type reqInfo struct {
	UID       types.UID
	Operation admissionv1.Operation
	Kind      metav1.GroupVersionKind
	Namespace string
	Name      string
}

// admitFunc decodes and decides one AdmissionReview body. An *envelopeError means there
// is no usable request to answer (HTTP error); any other error is a request-level
// problem, answered with code 400 in an AdmissionResponse.
type admitFunc func(ctx context.Context, body []byte) (reqInfo, *admissionv1.AdmissionResponse, error)

// envelope is an admission.k8s.io/v1 AdmissionReview with the object views decoded in the
// same pass: the body is scanned once, not once for the envelope and again for the
// object (a RawExtension), which halves the cost of every call (docs/benchmarks.md).
type envelope[V any] struct {
	APIVersion string      `json:"apiVersion"`
	Kind       string      `json:"kind"`
	Request    *request[V] `json:"request"`
}

// request is the part of an AdmissionRequest the webhooks read.
type request[V any] struct {
	UID       types.UID               `json:"uid"`
	Kind      metav1.GroupVersionKind `json:"kind"`
	Name      string                  `json:"name"`
	Namespace string                  `json:"namespace"`
	Operation admissionv1.Operation   `json:"operation"`
	Object    *V                      `json:"object"`
	OldObject *V                      `json:"oldObject"`
}

func (r *request[V]) info() reqInfo {
	return reqInfo{UID: r.UID, Operation: r.Operation, Kind: r.Kind, Namespace: r.Namespace, Name: r.Name}
}

// check rejects what is not a usable AdmissionReview v1.
func (e *envelope[V]) check() error {
	if e.APIVersion != admissionv1.SchemeGroupVersion.String() || e.Kind != "AdmissionReview" {
		return &envelopeError{http.StatusBadRequest, fmt.Sprintf("expected admission.k8s.io/v1 AdmissionReview, got apiVersion %q kind %q", e.APIVersion, e.Kind)}
	}
	if e.Request == nil {
		return &envelopeError{http.StatusBadRequest, "AdmissionReview has no request"}
	}
	if e.Request.UID == "" {
		return &envelopeError{http.StatusBadRequest, "AdmissionReview request has no uid"}
	}
	return nil
}

// ignored accepts any JSON value without looking at it.
type ignored struct{}

func (*ignored) UnmarshalJSON([]byte) error { return nil }

// typed adapts a decision on object views of type V into an admitFunc.
func typed[V any](decide func(ctx context.Context, req *request[V]) (*admissionv1.AdmissionResponse, error)) admitFunc {
	return func(ctx context.Context, body []byte) (reqInfo, *admissionv1.AdmissionResponse, error) {
		// The fast path reads only what the views read (fastdecode.go). Anything it
		// declines takes the full decode below, which also words the errors.
		if env, ok := fastDecode[V](body); ok {
			if err := env.check(); err != nil {
				return reqInfo{}, nil, err
			}
			resp, err := decide(ctx, env.Request)
			return env.Request.info(), resp, err
		}
		var env envelope[V]
		// Case-sensitive, as the API server decodes: encoding/json would also match
		// "speC" or "backupmode", fields the API server treats as different (found by
		// fuzzing).
		if err := utiljson.UnmarshalCaseSensitivePreserveInts(body, &env); err != nil {
			// Tell an unusable envelope from an unusable object: only the object's
			// problems can be answered to the request's UID.
			var bare envelope[ignored]
			if bareErr := utiljson.UnmarshalCaseSensitivePreserveInts(body, &bare); bareErr != nil {
				return reqInfo{}, nil, &envelopeError{http.StatusBadRequest, "decode AdmissionReview: " + bareErr.Error()}
			}
			if err := bare.check(); err != nil {
				return reqInfo{}, nil, err
			}
			return bare.Request.info(), nil, objectError(err)
		}
		if err := env.check(); err != nil {
			return reqInfo{}, nil, err
		}
		resp, err := decide(ctx, env.Request)
		return env.Request.info(), resp, err
	}
}

// objectError words a decode error of the request's object (or oldObject) with the
// field path inside that object.
func objectError(err error) error {
	var fe utiljson.FieldError
	if errors.As(err, &fe) {
		what, path, _ := strings.Cut(strings.TrimPrefix(fe.FieldPath(), "request."), ".")
		fe.SetFieldPath(path)
		return fmt.Errorf("decode %s: %w", what, fe)
	}
	return fmt.Errorf("decode object: %w", err)
}

// reviewHandler is the HTTP side of one webhook path.
type reviewHandler struct {
	name     string
	admit    admitFunc
	maxBytes int64
	log      logr.Logger
	metrics  *Metrics
}

var _ http.Handler = (*reviewHandler)(nil)

// envelopeError is a request that is not a usable AdmissionReview at all; it is answered
// with an HTTP error status, since there is no request UID to answer to.
type envelopeError struct {
	code int
	msg  string
}

func (e *envelopeError) Error() string { return e.msg }

func (h *reviewHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	body, err := h.readBody(w, r)
	var info reqInfo
	var resp *admissionv1.AdmissionResponse
	if err == nil {
		info, resp, err = h.admit(r.Context(), body)
	}
	var env *envelopeError
	if errors.As(err, &env) {
		h.log.Info("Rejected malformed admission request", "webhook", h.name, "status", env.code, "error", env.msg)
		h.metrics.observe(h.name, "malformed", start)
		writeEnvelopeError(w, env)
		return
	}
	// The request's logger is built only when something is logged: its key-value pairs
	// cost a dozen allocations, a tenth of a call's, for a debug line that is usually off.
	requestLog := func(l logr.Logger) logr.Logger {
		return l.WithValues("webhook", h.name, "uid", info.UID, "operation", info.Operation,
			"kind", info.Kind.Kind, "namespace", info.Namespace, "name", info.Name)
	}
	result := "allowed"
	switch {
	case err != nil:
		requestLog(h.log).Info("Rejected unusable admission request", "error", err.Error())
		resp = errored(http.StatusBadRequest, err)
		result = "error"
	case !resp.Allowed:
		result = "denied"
	case resp.Patch != nil:
		result = "patched"
	}
	if debug := h.log.V(1); debug.Enabled() {
		requestLog(debug).Info("Answered admission request", "result", result, "warnings", len(resp.Warnings))
	}
	resp.UID = info.UID
	h.metrics.observe(h.name, result, start)
	writeReview(w, http.StatusOK, resp)
}

// readBody checks the transport and reads the body within the size limit.
func (h *reviewHandler) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if r.Method != http.MethodPost {
		return nil, &envelopeError{http.StatusMethodNotAllowed, "admission requests must be POSTed"}
	}
	if ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || ct != "application/json" {
		return nil, &envelopeError{http.StatusUnsupportedMediaType, fmt.Sprintf("content type must be application/json, got %q", r.Header.Get("Content-Type"))}
	}
	if r.ContentLength > h.maxBytes {
		return nil, &envelopeError{http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is %d bytes; the limit is %d", r.ContentLength, h.maxBytes)}
	}
	if n := r.ContentLength; n > 0 {
		// The API server sends a Content-Length: read into a buffer of that size at once,
		// rather than growing one (which allocates the body about twice over).
		body := make([]byte, n)
		if _, err := io.ReadFull(r.Body, body); err != nil {
			return nil, &envelopeError{http.StatusBadRequest, "read request body: " + err.Error()}
		}
		return body, nil
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.maxBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, &envelopeError{http.StatusRequestEntityTooLarge, fmt.Sprintf("request body exceeds the limit of %d bytes", h.maxBytes)}
		}
		return nil, &envelopeError{http.StatusBadRequest, "read request body: " + err.Error()}
	}
	if len(body) == 0 {
		return nil, &envelopeError{http.StatusBadRequest, "request body is empty"}
	}
	return body, nil
}

func writeReview(w http.ResponseWriter, code int, resp *admissionv1.AdmissionResponse) {
	out := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: admissionv1.SchemeGroupVersion.String(), Kind: "AdmissionReview"},
		Response: resp,
	}
	body, err := json.Marshal(&out)
	if err != nil { // cannot happen for these types; answer something the API server can read
		http.Error(w, "encode AdmissionReview: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(body)
}

// writeEnvelopeError answers with an HTTP error status and, for clients that read the
// body, an AdmissionReview whose response says what was wrong.
func writeEnvelopeError(w http.ResponseWriter, e *envelopeError) {
	writeReview(w, e.code, errored(int32(e.code), errors.New(e.msg)))
}

// allowed is a response that lets the request through unchanged.
func allowed(warnings []string) *admissionv1.AdmissionResponse {
	return &admissionv1.AdmissionResponse{Allowed: true, Warnings: warnings}
}

// errored denies a request that could not be evaluated.
func errored(code int32, err error) *admissionv1.AdmissionResponse {
	return &admissionv1.AdmissionResponse{
		Allowed: false,
		Result:  &metav1.Status{Status: metav1.StatusFailure, Code: code, Message: err.Error()},
	}
}
