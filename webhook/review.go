package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	jsonv1 "github.com/go-json-experiment/json/v1"
	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
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
type admitFunc func(ctx context.Context, body []byte) (reqInfo, *admission.Response, error)

// envelope is an admission.k8s.io/v1 AdmissionReview with the object views decoded in the
// same pass. The body is decoded once, by JSON v2, straight into the views: decoding it
// first into an AdmissionRequest (RawExtension objects) and then the objects into views,
// as controller-runtime's admission.Webhook does, took 70% of a call and five times as
// long in all (docs/benchmarks.md), so the HTTP half here is ours and the answers are
// controller-runtime's admission.Response.
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

// decision answers one request on object views of type V. Its response is
// controller-runtime's (admission.Allowed, admission.Patched, ...); an error is a
// request-level problem, answered with code 400.
type decision[V any] func(ctx context.Context, req *request[V]) (admission.Response, error)

// typed adapts a decision on object views of type V into an admitFunc.
func typed[V any](decide decision[V]) admitFunc {
	return func(ctx context.Context, body []byte) (reqInfo, *admission.Response, error) {
		var env envelope[V]
		if err := jsonv2.Unmarshal(body, &env, reviewOptions); err != nil {
			// Tell an unusable envelope from an unusable object: only the object's
			// problems can be answered to the request's UID.
			var bare envelope[jsontext.Value]
			if bareErr := jsonv2.Unmarshal(body, &bare, reviewOptions); bareErr != nil {
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
		if err == nil {
			// Encodes the patch operations and sets the uid.
			err = resp.Complete(admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{UID: env.Request.UID}})
		}
		return env.Request.info(), &resp, err
	}
}

// reviewOptions decode a review the way the API server's decoder (sigs.k8s.io/json, as
// apimachinery uses it) does, for the members the views read: names match
// case-sensitively (JSON v2's default), a name given twice is decoded again over the
// first with encoding/json's merge rules (a null keeps a string or struct, a second
// object replaces an untyped one), invalid UTF-8 becomes U+FFFD, and an integer in an
// untyped value stays an int64 (so a policy's maxRetryTimes is reported as written).
// TestDecodeMatchesAPIMachinery and FuzzDecode hold the decode to that decoder; each of
// these options was found needed by them.
var reviewOptions = jsonv2.JoinOptions(
	jsontext.AllowDuplicateNames(true),
	jsontext.AllowInvalidUTF8(true),
	jsonv1.MergeWithLegacySemantics(true),
	jsonv2.WithUnmarshalers(jsonv2.UnmarshalFromFunc(preserveInts)),
)

// preserveInts decodes a JSON number into an untyped value as an int64 when it is an
// integer that fits, else as a float64; anything else takes the default decode.
func preserveInts(dec *jsontext.Decoder, v *any) error {
	if dec.PeekKind() != '0' {
		return errors.ErrUnsupported // the default decode
	}
	tok, err := dec.ReadToken()
	if err != nil {
		return err
	}
	s := tok.String()
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		*v = n
		return nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return fmt.Errorf("number %s out of range", s)
	}
	*v = f
	return nil
}

// objectError words a decode error of the request's object (or oldObject) with the
// field path inside that object.
func objectError(err error) error {
	var se *jsonv2.SemanticError
	if errors.As(err, &se) && se.JSONPointer != "" {
		var path []string
		for tok := range se.JSONPointer.Tokens() {
			path = append(path, tok)
		}
		if len(path) > 2 && path[0] == "request" {
			return fmt.Errorf("decode %s: %s: %w", path[1], strings.Join(path[2:], "."), err)
		}
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
	var resp *admission.Response
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
		resp = errored(err)
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
	writeReview(w, http.StatusOK, &resp.AdmissionResponse)
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
	resp := admission.Errored(int32(e.code), errors.New(e.msg))
	writeReview(w, e.code, &resp.AdmissionResponse)
}

// allowed lets the request through unchanged.
func allowed(warnings []string) admission.Response {
	return admission.Allowed("").WithWarnings(warnings...)
}

// errored answers a request that could not be evaluated.
func errored(err error) *admission.Response {
	resp := admission.Errored(http.StatusBadRequest, err)
	return &resp
}
