// qtviewer: the demo image viewer. Loads C plugins from its plugin folder
// and from --plugin PATH; --screenshot/--quit-after-ms/--click run it
// headless (CI, no display) through the same paths a user takes.
#include "qt_exit.h"
#include "viewer_window.h"

#include <QApplication>
#include <QCommandLineParser>
#include <QDir>
#include <QTimer>

#include <cstdio>
#include <cstdlib>

namespace {

QStringList plugin_dirs(const QCommandLineParser &p, const QString &dir_opt) {
    if (p.isSet(dir_opt)) return p.values(dir_opt);
    if (const char *env = std::getenv("VIEWER_PLUGIN_PATH"))
        return QString::fromLocal8Bit(env).split(':', Qt::SkipEmptyParts);
    QDir app(QCoreApplication::applicationDirPath());
    QStringList dirs;
    for (const char *rel : {"../plugins", "plugins"})  // build tree, next to the binary
        if (app.exists(rel)) dirs << app.absoluteFilePath(rel);
    return dirs;
}

// "DOCK/WIDGET@MS" clicks a button, "DOCK/WIDGET=TEXT@MS" types TEXT into a
// line edit and presses Return. MS counts from when the plugins are loaded.
bool schedule_click(Viewer &v, const QString &spec) {
    int at = spec.lastIndexOf('@'), slash = spec.indexOf('/');
    bool ok = false;
    int ms = at > 0 ? spec.mid(at + 1).toInt(&ok) : 0;
    if (!ok || slash <= 0 || slash > at) return false;
    QString dock = spec.left(slash), widget = spec.mid(slash + 1, at - slash - 1);
    int eq = widget.indexOf('=');
    QString text = eq >= 0 ? widget.mid(eq + 1) : QString();
    if (eq >= 0) widget = widget.left(eq);
    QTimer::singleShot(ms, &v, [&v, dock, widget, text, eq, spec] {
        bool done = eq >= 0 ? v.submit(dock, widget, text) : v.click(dock, widget);
        std::fprintf(stderr, "viewer: --click %s: %s\n", qPrintable(spec),
                     done ? "done" : "no such enabled widget");
    });
    return true;
}

// QGuiApplication takes "-plugin"/"--plugin" for its own generic plugins and
// removes it from argv: take ours out first.
QStringList take_plugin_args(int &argc, char **argv) {
    QStringList paths;
    int out = 1;
    for (int i = 1; i < argc; i++) {
        QString a = QString::fromLocal8Bit(argv[i]);
        if ((a == "--plugin" || a == "-plugin") && i + 1 < argc)
            paths << QString::fromLocal8Bit(argv[++i]);
        else if (a.startsWith("--plugin="))
            paths << a.mid(9);
        else
            argv[out++] = argv[i];
    }
    argc = out;
    argv[argc] = nullptr;
    return paths;
}

}  // namespace

static int run_viewer(int argc, char **argv) {
    QStringList plugin_paths = take_plugin_args(argc, argv);
    // Without a display Qt would abort: run offscreen instead.
    if (!std::getenv("QT_QPA_PLATFORM") && !std::getenv("DISPLAY") &&
        !std::getenv("WAYLAND_DISPLAY"))
        setenv("QT_QPA_PLATFORM", "offscreen", 0);
    QApplication app(argc, argv);
    QCoreApplication::setApplicationName("qtviewer");

    QCommandLineParser p;
    p.setApplicationDescription("qtworker demo image viewer with C plugins");
    p.addHelpOption();
    const QString plugin = "plugin", dir = "plugin-dir", no_dir = "no-plugin-dir",
                  shot = "screenshot", scale = "screenshot-scale", quit = "quit-after-ms",
                  click = "click", size = "size", stacked = "stacked",
                  no_capture = "no-capture";
    p.addOptions({
        {plugin, "Load the plugin PATH (repeatable).", "PATH"},
        {dir, "Load every *.so in DIR instead of the default folder (repeatable).", "DIR"},
        {no_dir, "Load only the --plugin ones."},
        {shot, "Save a PNG of the window (at --quit-after-ms, else after 1 s).", "FILE"},
        {scale, "Scale the screenshot (e.g. 0.5).", "F", "1"},
        {quit, "Close the window after MS ms, as a user would (headless: no dialog).", "MS"},
        {click, "Click DOCK/BUTTON, or type DOCK/EDIT=TEXT and Return, MS ms after start "
                "(repeatable).", "DOCK/WIDGET[=TEXT]@MS"},
        {size, "Window size.", "WxH", "1200x760"},
        {stacked, "Stack layers instead of the grid view."},
        {no_capture, "Leave stdout/stderr alone (by default, what a plugin's worker "
                     "prints with printf also shows in the Log dock)."},
    });
    p.process(app);
    // Plugins printf as they compute: their lines reach the Log dock as the
    // worker's OUTPUT, and the terminal as before.
    if (!p.isSet(no_capture)) worker_capture_stdio(WORKER_CAPTURE_STDOUT | WORKER_CAPTURE_STDERR);

    QString platform = QGuiApplication::platformName();
    bool headless = p.isSet(quit) || platform == "offscreen" || platform == "minimal";
    Viewer v(headless);
    QStringList wh = p.value(size).split('x');
    if (wh.size() == 2) v.resize(wh[0].toInt(), wh[1].toInt());
    if (p.isSet(stacked)) v.canvas()->set_grid(false);
    v.show();

    int loaded = 0;
    if (!p.isSet(no_dir))
        for (const QString &d : plugin_dirs(p, dir)) loaded += v.load_plugin_dir(d);
    for (const QString &path : plugin_paths) loaded += v.load_plugin(path) >= 0;
    std::printf("viewer: %d plugin(s) loaded\n", loaded);
    for (const QString &spec : p.values(click))
        if (!schedule_click(v, spec)) {
            std::fprintf(stderr, "viewer: bad --click '%s' (want DOCK/WIDGET[=TEXT]@MS)\n",
                         qPrintable(spec));
            return 2;
        }

    QString file = p.value(shot);
    double factor = p.value(scale).toDouble();
    auto snap = [&v, file, factor] {
        if (file.isEmpty()) return;
        bool ok = v.save_screenshot(file, factor);
        std::printf("viewer: screenshot %s %s\n", ok ? "written to" : "FAILED:", qPrintable(file));
        std::fflush(stdout);
    };
    if (p.isSet(quit)) {
        QTimer::singleShot(p.value(quit).toInt(), &v, [&v, snap] {
            snap();
            v.close();  // the normal close path: quits running workers first
        });
    } else {
        QTimer::singleShot(1000, &v, snap);
    }
    int rc = app.exec();
    // After exec: qtworker's exit hook has quit and joined what was left.
    std::printf("viewer: exit code %d, %d worker(s) still live\n", rc, worker_live_count());
    return rc;
}

int main(int argc, char **argv) {
    int rc = run_viewer(argc, argv);  // the QApplication lives and dies in there
    wait_for_qt_pool_threads();
    return rc;
}
