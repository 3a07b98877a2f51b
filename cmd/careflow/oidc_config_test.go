package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestOIDCSettingsLoadAndValidate(t *testing.T) {
	t.Chdir(t.TempDir())
	c, err := loadConfig(flags(t), env(nil))
	require.NoError(t, err)
	assert.Empty(t, c.OIDCIssuer, "off by default")
	assert.Equal(t, "preferred_username", c.OIDCUsernameClaim)

	c, err = loadConfig(flags(t, "--oidc-audience", "careflow-north", "--oidc-username-claim", "email"), env(map[string]string{
		"CAREFLOW_OIDC_ISSUER":   "https://idp.clinic.test/realms/north",
		"CAREFLOW_OIDC_JWKS_URL": "https://idp.clinic.test/realms/north/protocol/openid-connect/certs",
	}))
	require.NoError(t, err)
	assert.Equal(t, "https://idp.clinic.test/realms/north", c.OIDCIssuer)
	assert.Equal(t, "https://idp.clinic.test/realms/north/protocol/openid-connect/certs", c.OIDCJWKSURL)
	assert.Equal(t, "careflow-north", c.OIDCAudience)
	assert.Equal(t, "email", c.OIDCUsernameClaim)

	valid := c
	for name, tc := range map[string]struct {
		change func(*Config)
		want   string
	}{
		"issuer without key set": {func(c *Config) { c.OIDCJWKSURL = "" }, "oidc_issuer (--oidc-issuer, CAREFLOW_OIDC_ISSUER): oidc_issuer and oidc_jwks_url go together"},
		"key set without issuer": {func(c *Config) { c.OIDCIssuer = "" }, "oidc_issuer and oidc_jwks_url go together"},
		"no audience":            {func(c *Config) { c.OIDCAudience = "" }, "oidc_audience (--oidc-audience, CAREFLOW_OIDC_AUDIENCE): is required"},
		"plain http":             {func(c *Config) { c.OIDCJWKSURL = "http://idp.clinic.test/certs" }, "oidc_jwks_url (--oidc-jwks-url, CAREFLOW_OIDC_JWKS_URL)"},
		"not a URL":              {func(c *Config) { c.OIDCJWKSURL = "idp.clinic.test/certs" }, "not an absolute URL"},
		"careflow's own issuer":  {func(c *Config) { c.OIDCIssuer = c.AuthIssuer }, "must differ"},
		"no username claim":      {func(c *Config) { c.OIDCUsernameClaim = "" }, "oidc_username_claim"},
	} {
		c := valid
		tc.change(&c)
		assert.ErrorContains(t, c.Validate(), tc.want, name)
	}
	loopback := valid
	loopback.OIDCJWKSURL = "http://127.0.0.1:8081/certs"
	assert.NoError(t, loopback.Validate(), "http to loopback is for tests")
	off := valid
	off.OIDCIssuer, off.OIDCJWKSURL, off.OIDCAudience, off.OIDCUsernameClaim = "", "", "", ""
	assert.NoError(t, off.Validate(), "all empty is off")
}
