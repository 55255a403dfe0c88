package config

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
)

// restart_env names the variables a restart command gets besides PATH and
// HOME; Load refuses names that hold redisbot's own secrets.
func TestRestartEnv(t *testing.T) {
	cfg, err := Load(context.Background(), "testdata/good_restart_env.yml", env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Instances[0].Remediation.RestartEnv; !slices.Equal(got, []string{"KUBECONFIG", "REDIS_UNIT"}) {
		t.Errorf("cache-1 restart_env = %q", got)
	}
	if got := cfg.Instances[1].Remediation.RestartEnv; got != nil {
		t.Errorf("cache-2 restart_env = %q, want none", got)
	}

	_, err = Load(context.Background(), filepath.Join("testdata", "bad_remediation_restart_env.yml"), env(map[string]string{"CACHE1_ADMIN_PASSWORD": "S3CRET"}))
	want := "instances[0].remediation.restart_env[1]: SLACK_BOT_TOKEN holds a secret redisbot reads: it is never passed to the restart command\n" +
		"instances[0].remediation.restart_env[2]: slack_app_token holds a secret redisbot reads: it is never passed to the restart command\n" +
		"instances[0].remediation.restart_env[3]: REDISBOT_INSTANCES_CACHE_1_PASSWORD holds a secret redisbot reads: it is never passed to the restart command\n" +
		"instances[0].remediation.restart_env[4]: CACHE1_ADMIN_PASSWORD holds a secret redisbot reads: it is never passed to the restart command\n" +
		"instances[0].remediation.restart_env[5]: PATH is always passed: list only other variables\n" +
		"instances[0].remediation.restart_env[6]: must be the name of an environment variable, not its value\n" +
		"instances[0].remediation.restart_env[7]: duplicate of instances[0].remediation.restart_env[0]\n" +
		"instances[1].remediation.restart_env: only with restart_method command\n" +
		"instances[2].remediation.restart_env: expected a list, got a string"
	if err == nil || err.Error() != want {
		t.Errorf("Load error:\n%v\nwant:\n%s", err, want)
	}
}
