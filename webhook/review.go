package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"time"

	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utiljson "sigs.k8s.io/json"
)

// DefaultMaxRequestBytes bounds an AdmissionReview body. An object is at most about
// 1.5 MiB (etcd's request limit) and an UPDATE review carries two of them plus the
// envelope; 7 MiB leaves room for that and rejects anything larger before decoding it.
const DefaultMaxRequestBytes = 7 << 20

// admitFunc decides one admission request. It returns the response without UID; a
// returned error means the request itself is unusable and is answered with code 400.
type admitFunc func(ctx context.Context, req *admissionv1.AdmissionRequest) (*admissionv1.AdmissionResponse, error)

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
	review, err := h.readReview(w, r)
	if err != nil {
		var env *envelopeError
		if !errors.As(err, &env) {
			env = &envelopeError{code: http.StatusBadRequest, msg: err.Error()}
		}
		h.log.Info("Rejected malformed admission request", "webhook", h.name, "status", env.code, "error", env.msg)
		h.metrics.observe(h.name, "malformed", start)
		writeEnvelopeError(w, env)
		return
	}
	req := review.Request
	log := h.log.WithValues("webhook", h.name, "uid", req.UID, "operation", req.Operation,
		"kind", req.Kind.Kind, "namespace", req.Namespace, "name", req.Name)
	ctx := logr.NewContext(r.Context(), log)

	resp, err := h.admit(ctx, req)
	result := "allowed"
	switch {
	case err != nil:
		log.Info("Rejected unusable admission request", "error", err.Error())
		resp = errored(http.StatusBadRequest, err)
		result = "error"
	case !resp.Allowed:
		result = "denied"
	case resp.Patch != nil:
		result = "patched"
	}
	log.V(1).Info("Answered admission request", "result", result, "warnings", len(resp.Warnings))
	resp.UID = req.UID
	h.metrics.observe(h.name, result, start)
	writeReview(w, http.StatusOK, resp)
}

// readReview checks the transport and decodes an admission.k8s.io/v1 AdmissionReview.
func (h *reviewHandler) readReview(w http.ResponseWriter, r *http.Request) (*admissionv1.AdmissionReview, error) {
	if r.Method != http.MethodPost {
		return nil, &envelopeError{http.StatusMethodNotAllowed, "admission requests must be POSTed"}
	}
	if ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || ct != "application/json" {
		return nil, &envelopeError{http.StatusUnsupportedMediaType, fmt.Sprintf("content type must be application/json, got %q", r.Header.Get("Content-Type"))}
	}
	if r.ContentLength > h.maxBytes {
		return nil, &envelopeError{http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is %d bytes; the limit is %d", r.ContentLength, h.maxBytes)}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.maxBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, &envelopeError{http.StatusRequestEntityTooLarge, fmt.Sprintf("request body exceeds the limit of %d bytes", h.maxBytes)}
		}
		return nil, fmt.Errorf("read request body: %w", err)
	}
	if len(body) == 0 {
		return nil, errors.New("request body is empty")
	}
	var review admissionv1.AdmissionReview
	if err := utiljson.UnmarshalCaseSensitivePreserveInts(body, &review); err != nil {
		return nil, fmt.Errorf("decode AdmissionReview: %w", err)
	}
	if review.APIVersion != admissionv1.SchemeGroupVersion.String() || review.Kind != "AdmissionReview" {
		return nil, fmt.Errorf("expected admission.k8s.io/v1 AdmissionReview, got apiVersion %q kind %q", review.APIVersion, review.Kind)
	}
	if review.Request == nil {
		return nil, errors.New("AdmissionReview has no request")
	}
	if review.Request.UID == "" {
		return nil, errors.New("AdmissionReview request has no uid")
	}
	return &review, nil
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
