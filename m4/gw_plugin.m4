# GW_ARG_PLUGIN(NAME, PKG-MODULES, HELP)
# --enable-NAME=auto (default): build iff pkg-config finds PKG-MODULES;
# --enable-NAME / --enable-NAME=yes: a missing dependency is an error;
# --disable-NAME: skip. Sets NAME_CFLAGS, NAME_LIBS and BUILD_NAME.
AC_DEFUN([GW_ARG_PLUGIN], [
  AC_ARG_ENABLE([$1],
    [AS_HELP_STRING([--enable-$1=auto|yes|no], [$3 @<:@default=auto@:>@])],
    [], [enable_$1=auto])
  AS_IF([test "x$enable_$1" != xno],
    [PKG_CHECK_MODULES(m4_toupper([$1]), [$2],
      [enable_$1=yes],
      [AS_IF([test "x$enable_$1" = xyes],
        [AC_MSG_ERROR([--enable-$1 was given, but $2 was not found (Debian: see README.md)])],
        [enable_$1="no (missing $2)"])])])
  AM_CONDITIONAL(m4_toupper([BUILD_$1]), [test "x$enable_$1" = xyes])
])
