/* SPDX-License-Identifier: MIT */
/* The modes of xm-serve; each gets argv from its mode name on. */
#ifndef XM_SERVE_H
#define XM_SERVE_H

int serve_rr(int argc, char **argv);
int serve_lb(int argc, char **argv);
int serve_scenario(int argc, char **argv);
int serve_traffic(int argc, char **argv);
int serve_udp_echo(int argc, char **argv);

#endif
