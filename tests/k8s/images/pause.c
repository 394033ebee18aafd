// SPDX-License-Identifier: MIT
/*
 * The test cluster's pod sandbox ("pause") process: holds the pod's
 * namespaces, reaps orphans (it is PID 1 when the pod shares its PID
 * namespace) and exits cleanly on SIGINT/SIGTERM. Built static, packaged by
 * scripts/k8s-images.sh, so the kubelet never pulls an image.
 */
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_stop(int sig)
{
	(void)sig;
	_exit(0);
}

static void on_child(int sig)
{
	(void)sig;
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}

int main(void)
{
	struct sigaction stop = { .sa_handler = on_stop };
	struct sigaction child = { .sa_handler = on_child, .sa_flags = SA_NOCLDSTOP };

	if (sigaction(SIGINT, &stop, NULL) || sigaction(SIGTERM, &stop, NULL) ||
	    sigaction(SIGCHLD, &child, NULL)) {
		perror("pause: sigaction");
		return 1;
	}
	for (;;)
		pause();
}
