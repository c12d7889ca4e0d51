// pulumi-language-python: the Python language host the pulumi CLI starts to run a Python program or policy
// pack. Pulumi's own host (module sdk/python/cmd/pulumi-language-python/v3) is not served by the module proxy
// our machines reach, so this one is ours: the LanguageRuntime gRPC service, built on the same sdk/v3
// packages Pulumi's host uses (python/toolchain for the virtualenv, rpcutil for serving, the policy proxy),
// and running the same executor script, pulumi-language-python-exec, found beside this binary.
//
// It implements what `pulumi up/preview/refresh/destroy --policy-pack` need: Handshake, GetPluginInfo,
// GetRequiredPlugins/Packages (none: a dynamic provider is not a package), InstallDependencies, Run,
// RunPlugin (policy packs), About, GetProgramDependencies and Cancel. Code generation and packing are
// answered UNIMPLEMENTED.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	sdk "github.com/pulumi/pulumi/sdk/v3"
	"github.com/pulumi/pulumi/sdk/v3/go/common/apitype"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/cmdutil"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/logging"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/rpcutil"
	"github.com/pulumi/pulumi/sdk/v3/go/common/version"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"github.com/pulumi/pulumi/sdk/v3/python/toolchain"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/emptypb"
)

// The executor exits with this code after it has shown the user an actionable message: the engine then
// bails without adding an error of its own.
const exitedAfterUserMessage = 32

func main() {
	showVersion := flag.Bool("version", false, "print the plugin's version and exit")
	flag.String("tracing", "", "accepted for compatibility; tracing is not supported")
	flag.Parse()
	if *showVersion {
		fmt.Println(version.Version)
		return
	}
	logging.InitLogging(false, 0, false)

	self, err := os.Executable()
	if err != nil {
		cmdutil.Exit(fmt.Errorf("could not find this executable: %w", err))
	}
	executor := filepath.Join(filepath.Dir(self), "pulumi-language-python-exec")
	if _, err := os.Stat(executor); err != nil {
		cmdutil.Exit(fmt.Errorf("missing executor %s beside the language host: %w", executor, err))
	}

	host := &languageHost{executor: executor, engineAddress: flag.Arg(0)}
	host.cancelCtx, host.cancel = context.WithCancel(context.Background())
	handle, err := rpcutil.ServeWithOptions(rpcutil.ServeOptions{
		Init: func(srv *grpc.Server) error {
			pulumirpc.RegisterLanguageRuntimeServer(srv, host)
			return nil
		},
	})
	if err != nil {
		cmdutil.Exit(fmt.Errorf("could not start the language host's gRPC server: %w", err))
	}
	if host.engineAddress != "" {
		watchEngine(host.engineAddress, host.cancel)
	}
	fmt.Printf("%d\n", handle.Port) // the engine reads the port from the first line
	if err := <-handle.Done; err != nil {
		cmdutil.Exit(fmt.Errorf("language host stopped serving: %w", err))
	}
}

// watchEngine ends this process when the engine goes away, as every plugin must.
func watchEngine(address string, cancel context.CancelFunc) {
	if err := rpcutil.Healthcheck(context.Background(), address, 5*time.Minute, cancel); err != nil {
		cmdutil.Exit(fmt.Errorf("could not watch the engine at %s: %w", address, err))
	}
}

type languageHost struct {
	pulumirpc.UnimplementedLanguageRuntimeServer

	executor      string
	engineAddress string
	cancelCtx     context.Context // cancelled by the Cancel call: running programs get SIGINT
	cancel        context.CancelFunc
}

func (h *languageHost) Handshake(
	_ context.Context, req *pulumirpc.LanguageHandshakeRequest,
) (*pulumirpc.LanguageHandshakeResponse, error) {
	h.engineAddress = req.EngineAddress
	watchEngine(h.engineAddress, h.cancel)
	return &pulumirpc.LanguageHandshakeResponse{}, nil
}

func (h *languageHost) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: version.Version}, nil
}

func (h *languageHost) Cancel(context.Context, *emptypb.Empty) (*emptypb.Empty, error) {
	h.cancel()
	return &emptypb.Empty{}, nil
}

// GetRequiredPlugins and GetRequiredPackages: the dynamic-provider plugin ships with the CLI and a Python
// policy pack runs through this host, so a program of this kind needs no plugin to be installed.
func (h *languageHost) GetRequiredPlugins(
	context.Context, *pulumirpc.GetRequiredPluginsRequest,
) (*pulumirpc.GetRequiredPluginsResponse, error) {
	return &pulumirpc.GetRequiredPluginsResponse{}, nil
}

func (h *languageHost) GetRequiredPackages(
	ctx context.Context, req *pulumirpc.GetRequiredPackagesRequest,
) (*pulumirpc.GetRequiredPackagesResponse, error) {
	if _, err := resolveToolchain(req.Info); err != nil {
		return nil, err
	}
	return &pulumirpc.GetRequiredPackagesResponse{}, nil
}

func (h *languageHost) InstallDependencies(
	req *pulumirpc.InstallDependenciesRequest, server pulumirpc.LanguageRuntime_InstallDependenciesServer,
) error {
	tc, err := resolveToolchain(req.Info)
	if err != nil {
		return err
	}
	closer, stdout, stderr, err := rpcutil.MakeInstallDependenciesStreams(server, req.IsTerminal)
	if err != nil {
		return err
	}
	defer closer.Close()
	if err := tc.InstallDependencies(server.Context(), req.Info.ProgramDirectory, req.UseLanguageVersionTools,
		true, stdout, stderr); err != nil {
		return err
	}
	return closer.Close()
}

// Run runs the program: the executor with the engine's arguments, in the project's virtualenv, with the
// stack's configuration in PULUMI_CONFIG and the names of its secret keys in PULUMI_CONFIG_SECRET_KEYS.
func (h *languageHost) Run(ctx context.Context, req *pulumirpc.RunRequest) (*pulumirpc.RunResponse, error) {
	tc, err := resolveToolchain(req.Info)
	if err != nil {
		return nil, err
	}
	if err := tc.ValidateVenv(ctx); err != nil {
		return nil, err
	}
	runCtx, stop := context.WithCancel(h.cancelCtx)
	defer stop()
	context.AfterFunc(ctx, stop)
	cmd, err := tc.Command(runCtx, append([]string{h.executor}, h.runArguments(req)...)...)
	if err != nil {
		return nil, err
	}
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 5 * time.Second
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	env, err := configEnvironment(req)
	if err != nil {
		return nil, err
	}
	cmd.Env = append(environ(cmd), env...)

	err = cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return &pulumirpc.RunResponse{}, nil
	case errors.As(err, &exit) && exit.ExitCode() == exitedAfterUserMessage:
		return &pulumirpc.RunResponse{Bail: true}, nil
	case errors.As(err, &exit):
		return &pulumirpc.RunResponse{Error: fmt.Sprintf("program exited with non-zero exit code: %d",
			exit.ExitCode())}, nil
	default:
		return &pulumirpc.RunResponse{Error: fmt.Sprintf("could not run the Python executor: %v", err)}, nil
	}
}

func (h *languageHost) runArguments(req *pulumirpc.RunRequest) []string {
	var args []string
	add := func(name, value string) {
		if value != "" {
			args = append(args, "--"+name, value)
		}
	}
	add("monitor", req.GetMonitorAddress())
	add("engine", h.engineAddress)
	add("project", req.GetProject())
	add("root_directory", req.GetInfo().GetRootDirectory())
	add("stack", req.GetStack())
	add("pwd", req.GetPwd())
	add("dry_run", strconv.FormatBool(req.GetDryRun()))
	add("parallel", strconv.Itoa(int(req.GetParallel())))
	add("organization", req.GetOrganization())
	args = append(args, req.GetInfo().GetEntryPoint())
	return append(args, req.GetArgs()...)
}

func configEnvironment(req *pulumirpc.RunRequest) ([]string, error) {
	var env []string
	if req.GetConfig() != nil {
		config, err := json.Marshal(req.GetConfig())
		if err != nil {
			return nil, fmt.Errorf("could not serialize the configuration: %w", err)
		}
		env = append(env, "PULUMI_CONFIG="+string(config))
	}
	secretKeys := req.GetConfigSecretKeys()
	if secretKeys == nil {
		secretKeys = []string{}
	}
	keys, err := json.Marshal(secretKeys)
	if err != nil {
		return nil, fmt.Errorf("could not serialize the secret keys: %w", err)
	}
	return append(env, "PULUMI_CONFIG_SECRET_KEYS="+string(keys)), nil
}

// RunPlugin runs a Python policy pack (`python -u -m pulumi.policy <engine> <dir>`) behind the SDK's policy
// proxy, which hands it the stack's configuration. Other Python plugins are not supported.
func (h *languageHost) RunPlugin(
	req *pulumirpc.RunPluginRequest, server pulumirpc.LanguageRuntime_RunPluginServer,
) error {
	if req.Kind != string(apitype.AnalyzerPlugin) {
		return fmt.Errorf("this language host runs Python policy packs only, not %q plugins", req.Kind)
	}
	ctx := server.Context()
	tc, err := resolveToolchain(req.Info)
	if err != nil {
		return err
	}
	// A pack whose virtualenv is missing would start on the ambient Python, fail to import pulumi_policy and
	// leave the engine waiting for an analyzer that never answers: say so instead.
	if err := tc.ValidateVenv(ctx); err != nil {
		return fmt.Errorf("policy pack %s: %w", req.Info.ProgramDirectory, err)
	}
	args := append([]string{"-u", "-m", "pulumi.policy"}, req.Args...)
	cmd, err := tc.Command(ctx, append(args, req.Info.ProgramDirectory)...)
	if err != nil {
		return err
	}
	cmd.Dir = req.Info.ProgramDirectory
	closer, stdout, stderr, err := rpcutil.MakeRunPluginStreams(server, false)
	if err != nil {
		return err
	}
	defer closer.Close()

	proxy, stdout, err := sdk.NewPolicyProxy(ctx, stdout)
	if err != nil {
		return fmt.Errorf("could not start the policy pack proxy: %w", err)
	}
	config, err := proxy.AwaitConfiguration(ctx)
	if err != nil {
		return fmt.Errorf("could not get the stack configuration: %w", err)
	}
	cmd.Env = environ(cmd)
	if config != nil {
		env, err := policyEnvironment(config)
		if err != nil {
			return err
		}
		cmd.Env = append(cmd.Env, env...)
	}
	cmd.Env = append(cmd.Env, req.Env...)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("could not start the policy pack: %w", err)
	}
	if err := proxy.Attach(ctx, cmd); err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			status, _ := exit.Sys().(syscall.WaitStatus)
			return server.Send(&pulumirpc.RunPluginResponse{
				Output: &pulumirpc.RunPluginResponse_Exitcode{Exitcode: int32(status.ExitStatus())},
			})
		}
		return fmt.Errorf("could not attach the policy pack proxy: %w", err)
	}
	return closer.Close()
}

func policyEnvironment(config *pulumirpc.AnalyzerStackConfigureRequest) ([]string, error) {
	env := []string{"PULUMI_DRY_RUN=" + strconv.FormatBool(config.DryRun)}
	for name, value := range map[string]string{
		"PULUMI_ORGANIZATION": config.Organization, "PULUMI_PROJECT": config.Project, "PULUMI_STACK": config.Stack,
	} {
		if value != "" {
			env = append(env, name+"="+value)
		}
	}
	if config.Config != nil {
		data, err := json.Marshal(config.Config)
		if err != nil {
			return nil, fmt.Errorf("could not serialize the stack configuration: %w", err)
		}
		env = append(env, "PULUMI_CONFIG="+string(data))
	}
	return env, nil
}

func (h *languageHost) About(ctx context.Context, req *pulumirpc.AboutRequest) (*pulumirpc.AboutResponse, error) {
	tc, err := resolveToolchain(req.GetInfo())
	if err != nil {
		return nil, err
	}
	info, err := tc.About(ctx)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.AboutResponse{Executable: info.PythonExecutable, Version: info.PythonVersion.String()}, nil
}

func (h *languageHost) GetProgramDependencies(
	ctx context.Context, req *pulumirpc.GetProgramDependenciesRequest,
) (*pulumirpc.GetProgramDependenciesResponse, error) {
	tc, err := resolveToolchain(req.Info)
	if err != nil {
		return nil, err
	}
	packages, err := tc.ListPackages(ctx, req.TransitiveDependencies)
	if err != nil {
		return nil, fmt.Errorf("could not list the Python packages: %w", err)
	}
	deps := make([]*pulumirpc.DependencyInfo, len(packages))
	for i, p := range packages {
		deps[i] = &pulumirpc.DependencyInfo{Name: p.Name, Version: p.Version}
	}
	return &pulumirpc.GetProgramDependenciesResponse{Dependencies: deps}, nil
}

// resolveToolchain reads the project's runtime options (virtualenv, toolchain) the way Pulumi's host does.
func resolveToolchain(info *pulumirpc.ProgramInfo) (toolchain.Toolchain, error) {
	opts := toolchain.PythonOptions{Toolchain: toolchain.Pip}
	if info == nil {
		return toolchain.ResolveToolchain(opts)
	}
	opts.Root, opts.ProgramDir = info.RootDirectory, info.ProgramDirectory
	options := map[string]any{}
	if info.Options != nil {
		options = info.Options.AsMap()
	}
	if venv, ok := options["virtualenv"].(string); ok {
		opts.Virtualenv = venv
	}
	switch options["toolchain"] {
	case nil, "pip":
		opts.Toolchain = toolchain.Pip
	case "uv":
		opts.Toolchain = toolchain.Uv
	case "poetry":
		opts.Toolchain = toolchain.Poetry
	default:
		return nil, fmt.Errorf("unsupported Python toolchain option %v: use pip, uv or poetry", options["toolchain"])
	}
	return toolchain.ResolveToolchain(opts)
}

// environ is the command's environment: the toolchain's (the virtualenv activated) or this process's.
func environ(cmd *exec.Cmd) []string {
	if cmd.Env != nil {
		return cmd.Env
	}
	return os.Environ()
}
