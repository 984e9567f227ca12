"""Dependencies to Maven coordinates, the generated pom, and the schemes jars provide."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from sluice.application.model import DependencySpec
from workers.camel.jars import (
    Coordinates,
    camel_classpath,
    camel_pom,
    component_schemes,
    coordinates,
    managed,
)
from workers.camel.settings import CamelSettings
from workers.errors import CamelSourceError


@pytest.mark.parametrize(
    ("dependency", "expected"),
    [
        (
            DependencySpec(maven="org.apache.camel:camel-quartz"),
            Coordinates("org.apache.camel", "camel-quartz"),
        ),
        (DependencySpec(maven="g.x:a-b:1.2"), Coordinates("g.x", "a-b", "1.2")),
        (DependencySpec(maven="g:a:jar:linux:1.0"), Coordinates("g", "a", "1.0", "linux")),
        (
            DependencySpec(
                url="https://repo1.maven.org/maven2/org/apache/camel/camel-github/4.1.0/camel-github-4.1.0.jar",
                sha512sum="f40e",
            ),
            Coordinates("org.apache.camel", "camel-github", "4.1.0"),
        ),
        (
            DependencySpec(
                url="https://repo.example/maven2/org/eclipse/mylyn/github/org.eclipse.egit.github.core/2.1.5/org.eclipse.egit.github.core-2.1.5-sources.jar"
            ),
            Coordinates(
                "org.eclipse.mylyn.github", "org.eclipse.egit.github.core", "2.1.5", "sources"
            ),
        ),
    ],
)
def test_coordinates(dependency: DependencySpec, expected: Coordinates) -> None:
    assert coordinates(dependency) == expected


@pytest.mark.parametrize(
    ("dependency", "message"),
    [
        (DependencySpec(maven="just-a-name"), "is not Maven coordinates"),
        (DependencySpec(maven="g:a:pom:1"), "only jar dependencies"),
        (
            DependencySpec(url="https://example.com/lib/thing.jar"),
            "only jars in a Maven repository",
        ),
        (DependencySpec(url="https://x/maven2/g/a/1.0/other-1.0.jar"), "does not match a 1.0"),
    ],
)
def test_coordinates_errors(dependency: DependencySpec, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        coordinates(dependency)


def test_pom_lists_the_dependencies_where_the_template_says() -> None:
    marker = "<!-- dependencies of the application -->"
    pom = camel_pom([Coordinates("g", "a"), Coordinates("h", "b&c", "2", "x")]).decode()
    before, added = pom.split(marker)
    assert camel_pom([]).decode().split(marker)[0] == before
    assert "<dependency><groupId>g</groupId><artifactId>a</artifactId></dependency>" in added
    assert "<artifactId>b&amp;c</artifactId><version>2</version><classifier>x</classifier>" in added


async def test_a_bad_dependency_is_reported_before_maven_runs(tmp_path: Path) -> None:
    settings = CamelSettings(
        cache_dir=tmp_path,
        maven="/nonexistent/mvn",
        dependencies=(DependencySpec(name="GitHub", url="https://example.com/x.jar"),),
    )
    with pytest.raises(
        CamelSourceError,
        match=r"^configuration.yaml dependency \(GitHub\): https://example.com/x.jar: only jars",
    ):
        await camel_classpath(settings)


async def test_cached_sets_need_no_maven(tmp_path: Path) -> None:
    """A set is found by the digest of its pom; Maven is only asked for a missing set."""
    maven = tmp_path / "mvn"
    maven.write_text(
        "#!/bin/sh\n"
        'for arg in "$@"; do case "$arg" in -DoutputDirectory=*) out="${arg#*=}";; esac; done\n'
        'mkdir -p "$out" && touch "$out/camel-fake.jar"\n'
    )
    maven.chmod(0o755)
    settings = CamelSettings(cache_dir=tmp_path / "cache", maven=str(maven))
    jars = await camel_classpath(settings)
    [folder] = (tmp_path / "cache").iterdir()
    assert folder.name.startswith("camel-4.22.0-")
    assert jars == [folder / "lib" / "camel-fake.jar"]
    assert json.loads((folder / "jars.json").read_text())["camel_version"] == "4.22.0"
    offline = CamelSettings(cache_dir=tmp_path / "cache", maven="/nonexistent/mvn")
    assert await camel_classpath(offline) == jars
    other = CamelSettings(
        cache_dir=tmp_path / "cache", maven=str(maven), dependencies=(DependencySpec(maven="g:a"),)
    )
    assert await camel_classpath(other) != jars
    assert len(list((tmp_path / "cache").iterdir())) == 2


def test_component_schemes_come_from_the_jars(tmp_path: Path) -> None:
    jar = tmp_path / "camel-x.jar"
    with zipfile.ZipFile(jar, "w") as archive:
        for name in ("x", "xs", "sub/ignored"):
            archive.writestr(f"META-INF/services/org/apache/camel/component/{name}", "class=X")
        archive.writestr("META-INF/services/org/apache/camel/language/simple", "class=S")
    broken = tmp_path / "broken.jar"
    broken.write_text("not a zip")
    assert component_schemes([jar, broken]) == {"x", "xs"}


def test_camel_artifacts_follow_the_camel_release() -> None:
    old = Coordinates("org.apache.camel", "camel-github", "4.1.0")
    assert managed(old, "4.22.0") == Coordinates("org.apache.camel", "camel-github")
    same = Coordinates("org.apache.camel", "camel-quartz", "4.22.0")
    assert managed(same, "4.22.0") == same
    other = Coordinates("org.eclipse.mylyn.github", "org.eclipse.egit.github.core", "2.1.5")
    assert managed(other, "4.22.0") == other
