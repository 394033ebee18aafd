/* SPDX-License-Identifier: MIT */
/* The modes of xm-load; each gets argv from its mode name on. */
#ifndef XM_LOAD_H
#define XM_LOAD_H

int load_rr(int argc, char **argv);
int load_stream(int argc, char **argv);
int load_lb(int argc, char **argv);
int load_traffic(int argc, char **argv);
int load_udp(int argc, char **argv);

#endif
