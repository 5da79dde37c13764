/* Unit tests of fs/scratch.c: editor scratch files and directories, kept in
 * memory. Exact values and exact errnos, as rename(2), rmdir(2) say. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../../fs/scratch.h"
#include "check.h"

static struct scratch_files s;

/* The names directly in a directory, as "a,b," in list order. */
struct names {
	char text[256];
};

static void add_name(void *arg, const char *name)
{
	struct names *n = arg;
	strcat(n->text, name);
	strcat(n->text, ",");
}

static const char *list(const char *dir)
{
	static struct names n;
	n.text[0] = '\0';
	scratch_list(&s, dir, add_name, &n);
	return n.text;
}

/* 1: a directory, 0: a file, or the errno of scratch_stat. */
static int kind(const char *path)
{
	struct scratch_info si;
	int rc = scratch_stat(&s, path, &si);
	return rc ? rc : si.is_dir;
}

static void test_files_stay_files(void)
{
	struct scratch_info si;
	unsigned char *buf;
	size_t len;
	CHECK_INT(scratch_write(&s, ".a.swp", "abc", 3), 0);
	CHECK_INT(scratch_stat(&s, ".a.swp", &si), 0);
	CHECK(!si.is_dir);
	CHECK_INT(si.len, 3);
	CHECK_INT(si.subdirs, 0);
	CHECK_INT(scratch_read(&s, ".a.swp", &buf, &len), 0);
	CHECK_MEM(buf, len, "abc", 3);
	free(buf);
	CHECK_INT(scratch_rmdir(&s, ".a.swp"), -ENOTDIR);
	CHECK_INT(scratch_mkdir(&s, ".a.swp"), -EEXIST);
	CHECK_INT(scratch_remove(&s, ".a.swp"), 0);
	CHECK_INT(scratch_remove(&s, ".a.swp"), -ENOENT);
	CHECK_INT(kind(".a.swp"), -ENOENT);
}

static void test_mkdir_rmdir(void)
{
	struct scratch_info si;
	unsigned char *buf = (unsigned char *)"x";
	size_t len = 9;
	CHECK_INT(scratch_mkdir(&s, "sd/x~"), 0);
	CHECK_INT(scratch_mkdir(&s, "sd/x~"), -EEXIST);
	CHECK_INT(scratch_stat(&s, "sd/x~", &si), 0);
	CHECK(si.is_dir);
	CHECK_INT(si.len, 0);
	CHECK_INT(si.subdirs, 0);
	CHECK_STR(list("sd"), "x~,");
	CHECK_STR(list("sd/x~"), "");
	/* a directory is no file */
	CHECK_INT(scratch_create(&s, "sd/x~", false), -EISDIR);
	CHECK_INT(scratch_create(&s, "sd/x~", true), -EEXIST);
	CHECK_INT(scratch_read(&s, "sd/x~", &buf, &len), -EISDIR);
	CHECK(buf == NULL);
	CHECK_INT(len, 0);
	CHECK_INT(scratch_write(&s, "sd/x~", "y", 1), -EISDIR);
	CHECK_INT(scratch_remove(&s, "sd/x~"), -EISDIR);
	CHECK_INT(kind("sd/x~"), 1);
	/* what is in it keeps it */
	CHECK_INT(scratch_mkdir(&s, "sd/x~/d"), 0);
	CHECK_INT(scratch_create(&s, "sd/x~/d/f", true), 0);
	CHECK_INT(scratch_write(&s, "sd/x~/g", "12345", 5), 0);
	CHECK_INT(scratch_stat(&s, "sd/x~", &si), 0);
	CHECK_INT(si.subdirs, 1);
	CHECK_STR(list("sd"), "x~,");
	CHECK_STR(list("sd/x~"), "g,d,");
	CHECK_STR(list("sd/x~/d"), "f,");
	CHECK_INT(scratch_rmdir(&s, "sd/x~"), -ENOTEMPTY);
	CHECK_INT(scratch_rmdir(&s, "sd/x~/d"), -ENOTEMPTY);
	CHECK_INT(scratch_remove(&s, "sd/x~/d/f"), 0);
	CHECK_INT(scratch_rmdir(&s, "sd/x~/d"), 0);
	CHECK_INT(scratch_rmdir(&s, "sd/x~"), -ENOTEMPTY);
	CHECK_INT(scratch_remove(&s, "sd/x~/g"), 0);
	CHECK_INT(scratch_rmdir(&s, "sd/x~"), 0);
	CHECK_INT(scratch_rmdir(&s, "sd/x~"), -ENOENT);
	CHECK_STR(list("sd"), "");
	CHECK(s.head == NULL);
}

static void test_rename_dir(void)
{
	unsigned char *buf;
	size_t len;
	CHECK_INT(scratch_mkdir(&s, "a~"), 0);
	CHECK_INT(scratch_mkdir(&s, "a~/d"), 0);
	CHECK_INT(scratch_write(&s, "a~/d/f", "v", 1), 0);
	CHECK_INT(scratch_write(&s, "a~b", "w", 1), 0); /* not below a~ */
	CHECK_INT(scratch_rename(&s, "a~", "a~/d/in"), -EINVAL);
	CHECK_INT(scratch_rename(&s, "a~", "a~"), 0);
	CHECK_INT(scratch_rename(&s, "nope~", "b~"), -ENOENT);
	CHECK_INT(scratch_rename(&s, "a~", "a~b"), -ENOTDIR);
	CHECK_INT(scratch_rename(&s, "a~b", "a~"), -EISDIR);
	CHECK_INT(scratch_mkdir(&s, "full~"), 0);
	CHECK_INT(scratch_create(&s, "full~/f", true), 0);
	CHECK_INT(scratch_rename(&s, "a~", "full~"), -ENOTEMPTY);
	CHECK_INT(kind("a~/d/f"), 0);
	/* the whole subtree moves, over an empty directory */
	CHECK_INT(scratch_mkdir(&s, "b~"), 0);
	CHECK_INT(scratch_rename(&s, "a~", "b~"), 0);
	CHECK_INT(kind("a~"), -ENOENT);
	CHECK_INT(kind("a~/d"), -ENOENT);
	CHECK_INT(kind("a~/d/f"), -ENOENT);
	CHECK_INT(kind("b~"), 1);
	CHECK_INT(kind("b~/d"), 1);
	CHECK_INT(scratch_read(&s, "b~/d/f", &buf, &len), 0);
	CHECK_MEM(buf, len, "v", 1);
	free(buf);
	CHECK_INT(kind("a~b"), 0);
	CHECK_STR(list("b~"), "d,");
	/* a file over a file (an editor's save) */
	CHECK_INT(scratch_rename(&s, "a~b", "full~/f"), 0);
	CHECK_INT(scratch_read(&s, "full~/f", &buf, &len), 0);
	CHECK_MEM(buf, len, "w", 1);
	free(buf);
	CHECK_INT(kind("a~b"), -ENOENT);
}

int main(void)
{
	scratch_init(&s);
	test_files_stay_files();
	test_mkdir_rmdir();
	test_rename_dir();
	scratch_destroy(&s); /* frees what the tests left (ASan: no leak) */
	return check_report();
}
