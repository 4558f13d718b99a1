package server_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"dicomgate/platform/server"
	"dicomgate/platform/wire"
)

// connectSchemas names the request and response schemas of the DOPU and
// Patient Connect methods; "" where the request has no info (no schema).
var connectSchemas = map[string]methodSchema{
	"AllocatePackageId":            {"", "", "response-allocatepackageid.xsd"},
	"CreateConnectPackage":         {"method-createconnectpackage2.xsd", wire.RequestNamespacePrefix + "CreateConnectPackage2", "response-createconnectpackage.xsd"},
	"BeginPutConnectPackageBlob":   {"", "", "response-beginputconnectpackageblob.xsd"},
	"UpdateExternalId":             {"method-updateexternalid.xsd", wire.RequestNamespacePrefix + "UpdateExternalId", ""},
	"DeletePendingConnectPackage":  {"method-deletependingconnectpackage.xsd", wire.RequestNamespacePrefix + "DeletePendingConnectPackage", ""},
	"CreateConnectRequest":         {"method-createconnectrequest.xsd", wire.RequestNamespacePrefix + "CreateConnectRequest", "response-createconnectrequest.xsd"},
	"GetAuthorizedConnectRequests": {"method-getauthorizedconnectrequests.xsd", wire.RequestNamespacePrefix + "GetAuthorizedConnectRequests", "response-getauthorizedconnectrequests.xsd"},
	"DeletePendingConnectRequest":  {"method-deletependingconnectrequest.xsd", wire.RequestNamespacePrefix + "DeletePendingConnectRequest", ""},
}

// TestConnectWireValidatesAgainstSchemas runs every DOPU and Patient
// Connect method through the client (every optional part included once)
// and validates each request and response info with xmllint.
func TestConnectWireValidatesAgainstSchemas(t *testing.T) {
	xmllint, err := exec.LookPath("xmllint")
	if err != nil {
		requirePeer(t, "xmllint", err)
	}
	xsd := schemaDir(t)
	if _, err := os.Stat(filepath.Join(xsd, "method-createconnectpackage2.xsd")); err != nil {
		requirePeer(t, "HealthVault schemas", err)
	}
	e := newEnv(t, func(c *server.Config) { c.Connect.AuthorizedPageSize = 1 })
	ctx := context.Background()

	code := e.packageWithBlob(pattern(2*testChunk+1, 3), "ext-1") // Allocate, BeginPut…Blob, Create with code and streamed blobs
	if err := e.client.UpdateExternalID(ctx, code, "", "ext-2"); err != nil {
		t.Fatal(err)
	}
	if err := e.client.UpdateExternalID(ctx, "", "ext-2", "ext-3"); err != nil {
		t.Fatal(err)
	}
	if err := e.client.DeletePendingConnectPackage(ctx, code, ""); err != nil {
		t.Fatal(err)
	}
	e.packageWithBlob(pattern(5, 3), "ext-4")
	if err := e.client.DeletePendingConnectPackage(ctx, "", "ext-4"); err != nil {
		t.Fatal(err)
	}
	rec := e.newRecord("gus", false)
	for i, ext := range []string{"c-1", "c-2"} {
		cb := ""
		if i == 0 {
			cb = "https://example.org/callback"
		}
		c, err := e.client.CreateConnectRequest(ctx, "Gus", "Pet?", answer, ext, cb)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.srv.Connect(ctx, c, answer, e.personOf(rec), rec); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := e.client.GetAuthorizedConnectRequests(ctx, time.Time{}); err != nil || len(got) != 2 {
		t.Fatalf("authorized: %d, %v", len(got), err)
	}
	if _, err := e.client.GetAuthorizedConnectRequests(ctx, e.clock.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.CreateConnectRequest(ctx, "Gus", "Pet?", answer, "c-3", ""); err != nil {
		t.Fatal(err)
	}
	if err := e.client.DeletePendingConnectRequest(ctx, "c-3"); err != nil {
		t.Fatal(err)
	}

	validateExchanges(t, xmllint, xsd, e.rec.exchanges(), connectSchemas, true)
}
