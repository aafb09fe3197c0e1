"""Toil's own sort example (toil/test/sort/sort.py), run unchanged, on any job store.
usage: sort_workflow.py LOCATOR [Toil and sort options...] (in the directory it may write to)
The example is copied into ./toil_sort_example/ and imported from there as `sort`: importing it
as toil.test.sort.sort would run toil.test's __init__, which needs rsync on the machine.
On Toil's aws: store against SeaweedFS (which lacks DeletePublicAccessBlock and
PutBucketEncryption, both called by AWSJobStore.initialize) the leader makes those two bucket
set-up calls no-ops; nothing else is changed. Exits non-zero unless the output is the input's
lines sorted."""
import os
import shutil
import sys

import toil
import toil.lib.aws.s3 as toil_s3

toil_s3.enable_public_objects = lambda *a, **k: None  # create_s3_bucket calls them from here
toil_s3.enable_encryption = lambda *a, **k: None

if __name__ == "__main__":
    example = os.path.abspath("toil_sort_example")
    os.makedirs(example, exist_ok=True)
    shutil.copy(os.path.join(os.path.dirname(toil.__file__), "test", "sort", "sort.py"), example)
    sys.path.insert(0, example)
    import sort

    sort.main()
    with open("fileToSort.txt") as f:
        expected = sorted(f.readlines())
    with open("sortedFile.txt") as f:
        if f.readlines() != expected:
            sys.exit("sort_workflow: the output is not the input sorted")
